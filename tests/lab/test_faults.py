"""Faults under running agents (issue 15): a second agent for the same interface, wireguard-go
killed, a DNS server that stops answering, a flood of status clients that never read.

Every ordered pair of the mesh is pinged every 0.1 s throughout each case; each case prints
the seconds until every pair answered again after the fault and the pings lost per pair
(`pytest -s tests/lab/test_faults.py`), the figures of the README's "Failure behaviour" table.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from figures import figure
from labkit import LabFactory
from meshlab import DIRECT_TTL, PYTHON, SEED_BASIC_PATHS, Mesh, wait_for

from lab import dns, net

pytestmark = pytest.mark.lab

INTERVAL = 0.1  # seconds between two pings of a pair
GAP = 0.35  # seconds without a reply that count as an outage (ping answers in < 10 ms here)
RECOVER_WITHIN = 25.0  # seconds; generous bounds, the printed figures are what matters
UNTOUCHED = 5  # pings a pair the fault must not touch may still lose (a loaded 2-vCPU machine)
Pair = tuple[str, str]


def prefix() -> str:
    return "wgf" + secrets.token_hex(3)


class Pings:
    """Pings every ordered pair every INTERVAL with `ping -D` (replies carry the wall-clock
    time they arrived), and starts ping again when it exits: it does so at once while the
    interface it would send through is missing."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.replies: dict[Pair, list[float]] = {pair: [] for pair in mesh.pairs()}
        self.procs: dict[Pair, subprocess.Popen[str]] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in self.replies]
        self.started = 0.0

    def __enter__(self) -> Pings:
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        with self.lock:
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
        for t in self.threads:
            t.join(10)
        with self.lock:
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)

    def _run(self, pair: Pair) -> None:
        a, b = pair
        cmd = ["ping", "-n", "-D", "-i", str(INTERVAL), "-W", "1", self.mesh.wg_ip(b)]
        while not self.stopping.is_set():
            with self.lock:
                if self.stopping.is_set():
                    return
                proc = self.mesh.lab.host(a).popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                self.procs[pair] = proc
            assert proc.stdout is not None
            for line in proc.stdout:
                m = re.match(r"\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=", line)
                if m:
                    self.replies[pair].append(float(m.group(1)))
            proc.wait()
            self.stopping.wait(INTERVAL)

    def all_answer_since(self, t: float) -> bool:
        return all(any(r > t for r in replies[-3:]) for replies in self.replies.values())

    def figures(self, t0: float, t1: float) -> tuple[float, dict[Pair, int]]:
        """Seconds from `t0` until every pair answered again after its last outage, and the
        pings each pair lost, in [t0, t1]."""
        recovered, lost = 0.0, {}
        for pair, replies in self.replies.items():
            times = [t0, *(r for r in replies if t0 < r <= t1), t1]
            lost[pair] = sum(max(0, round((b - a) / INTERVAL) - 1) for a, b in zip(times, times[1:]))
            ends = [b for a, b in zip(times, times[1:-1]) if b - a > GAP]
            if ends:
                recovered = max(recovered, ends[-1] - t0)
        return recovered, lost


def report(
    what: str, pings: Pings, t0: float, t1: float, heals: bool = True
) -> tuple[float, dict[Pair, int]]:
    """Prints the seconds until every pair answered after `t0` and the pings lost per pair,
    and keeps both for bench/faults.py (`heals=False`: a window the fault lasts through,
    whose losses alone mean something)."""
    recovered, lost = pings.figures(t0, t1)
    if heals:
        figure(what, "every pair answers", recovered)
    figure(what, "pings lost", sum(lost.values()), "pings")
    print(f"\n{what}: every pair answers {recovered:.1f} s after the fault; pings lost per pair:")
    for (a, b), n in sorted(lost.items()):
        print(f"  {a:>8} -> {b:<8} {n:4d}")
    print(f"  total {sum(lost.values())} of {round((t1 - t0) / INTERVAL) * len(lost)} in {t1 - t0:.1f} s")
    return recovered, lost


def wait_recovered(pings: Pings, t0: float, what: str) -> float:
    """Wait until every pair answered since `t0` with no outage still going; the wall time."""
    wait_for(lambda: pings.all_answer_since(time.time() - GAP), RECOVER_WITHIN, 0.1, what)
    return time.time()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def errors_in(log: str, since: float) -> list[str]:
    """Lines of level ERROR or WARNING in an agent's log, logged after wall time `since`."""
    cutoff = time.strftime("%H:%M:%S", time.localtime(since))
    level = re.compile(r"\d\d:\d\d:\d\d\.\d+ (ERROR|WARNING)")
    return [ln for ln in log.splitlines() if level.match(ln) and ln >= cutoff]


@pytest.fixture(scope="module")
def mesh(module_lab: LabFactory) -> Iterator[Mesh]:
    """One seed-basic mesh for the cases that leave it whole again."""
    m = Mesh(module_lab("seed-basic", prefix=prefix()))
    try:
        m.start_all()
        m.wait_started(30)
        m.wait_paths(SEED_BASIC_PATHS, timeout=60)  # settled: no path change mid-measurement
        yield m
    finally:
        m.close()


@pytest.fixture
def whole(mesh: Mesh) -> Mesh:
    wait_for(mesh.all_ping, 30, 0.2, "every pair pings before the fault")
    return mesh


@pytest.mark.timeout(60)
def test_a_second_agent_leaves_the_first_alone(whole: Mesh) -> None:
    mesh, host = whole, "charlie"
    first = mesh.procs[host]
    agent = [PYTHON, "-m", "wg_netmanager", "-c", "/etc/wg_netmanager/net.yaml", "-a", mesh.wg_ip(host)]
    with Pings(mesh) as pings:
        wait_recovered(pings, time.time(), "pings running")
        t0 = time.time()
        # the same interface; the same with another state directory (no common lock: the
        # status socket tells); another interface on the same control port
        same = mesh.lab.host(host).run([*agent, "-i", "wg0", "-n", host], check=False, timeout=20)
        other = ["--state-dir", "/run/second-state"]
        sock = mesh.lab.host(host).run([*agent, *other, "-i", "wg0", "-n", host], check=False, timeout=20)
        port = mesh.lab.host(host).run([*agent, "-i", "wg1", "-n", host], check=False, timeout=20)
        t1 = time.time() + 2.0
        wait_for(lambda: time.time() > t1, 5, 0.1)  # an outage would show by now
        recovered, lost = report("second agent on charlie", pings, t0, t1)
    assert same.returncode == sock.returncode == port.returncode == 1, (same, sock, port)
    running = "another agent is already running"
    for res, reason in ((same, running), (sock, running), (port, "control port")):
        lines = res.stderr.strip().splitlines()
        print(f"  {' '.join(res.args[-4:])}: exit {res.returncode}: {res.stderr.strip()}")
        assert len(lines) == 1 and reason in lines[0] and "Traceback" not in res.stderr, res.stderr
    links = mesh.lab.host(host).run(["ip", "-br", "link"]).stdout
    assert "wg0" in links and "wg1" not in links, links
    assert not mesh.lab.host(host).path("/run/wg_netmanager/wg1.sock").exists()
    assert first.poll() is None and mesh.status(host) is not None
    assert max(lost.values()) <= UNTOUCHED, lost


def wireguard_go_pid(mesh: Mesh, host: str) -> int:
    for pid in net.ns_pids(mesh.lab.host(host).netns):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "wireguard-go":
                    return pid
        except OSError:
            continue
    raise AssertionError(f"no wireguard-go on {host}")


@pytest.mark.timeout(90)
def test_killed_wireguard_go_is_restored(whole: Mesh) -> None:
    mesh, host = whole, "charlie"
    restores = ((mesh.status(host) or {}).get("dataPlane") or {}).get("restores", 0)
    with Pings(mesh) as pings:
        wait_recovered(pings, time.time(), "pings running")
        t0 = time.time()
        os.kill(wireguard_go_pid(mesh, host), signal.SIGKILL)
        wait_for(lambda: not pings.all_answer_since(time.time() - GAP), 5, 0.05, "charlie's pairs stop")
        t1 = wait_recovered(pings, t0, "every pair answers again") + 1.0
        wait_for(lambda: time.time() > t1, 5, 0.1)
        recovered, lost = report("wireguard-go killed on charlie", pings, t0, t1)
    st = mesh.status(host)
    assert st is not None and st["dataPlane"] == {"state": "up", "restores": restores + 1}, st
    assert mesh.procs[host].poll() is None, "the agent kept running"
    logged = errors_in(mesh.log(host), t0)
    assert len(logged) <= 6, logged  # one per kind of failure, the restore; not one per tick
    assert recovered < 5.0, "restored at the first attempt, 0.25 s after the failure is seen"
    assert all(t == DIRECT_TTL for t in mesh.ttls().values()), "direct paths, as before the fault"


class Flood:
    """`n` clients of a status socket that never read, renewed all the time: the oldest is
    closed and a new one connects, as fast as one thread can."""

    def __init__(self, path: str, n: int = 200) -> None:
        self.path, self.n = path, n
        self.connects = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Flood:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _run(self) -> None:
        open_: list[socket.socket] = []
        try:
            while not self.stopping.is_set():
                if len(open_) >= self.n:
                    open_.pop(0).close()
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                open_.append(s)
                try:
                    s.connect(self.path)
                    self.connects += 1
                except BlockingIOError:
                    pass  # the backlog is full: the agent is behind
        finally:
            for s in open_:
                s.close()


@pytest.mark.timeout(60)
def test_status_answers_while_200_clients_never_read(whole: Mesh) -> None:
    mesh, host = whole, "alpha"
    pid = mesh.procs[host].pid
    path = mesh.lab.host(host).path("/run/wg_netmanager/wg0.sock")  # a Unix socket knows no netns
    before = rss_mb(pid)
    with Pings(mesh) as pings:
        wait_recovered(pings, time.time(), "pings running")
        t0 = time.time()
        with Flood(str(path)) as flood:
            wait_for(lambda: flood.connects >= 200, 10, 0.01, "200 clients connected")
            answers = []
            for _ in range(3):
                started = time.monotonic()
                answers.append((mesh.status(host), time.monotonic() - started))
            grew = rss_mb(pid) - before
        t1 = time.time()
        recovered, lost = report("200 status clients that never read, renewed, on alpha", pings, t0, t1)
    took = max(t for _, t in answers)
    figure("200 status clients that never read, renewed, on alpha", "`status` answers within", took)
    print(
        f"  {flood.connects} connects; `status` answered within {took:.2f} s; RSS {before:.0f} MB +{grew:.1f}"
    )
    assert all(st is not None and st["name"] == host for st, _ in answers), answers
    assert took < 3.0, took
    assert grew < 20, grew
    st = mesh.status(host)
    assert st is not None and st["statusSocket"]["clients"] <= 32
    assert max(lost.values()) <= UNTOUCHED, lost


# --- DNS: a lab of its own, with beta known only by its name --------------------------------

NAME = "beta.dyn.test"


@pytest.fixture
def dyn_mesh(make_lab: LabFactory) -> Iterator[Mesh]:
    if not shutil.which("dnsmasq"):
        pytest.skip("needs dnsmasq (scripts/apt-packages.txt)")
    lab = make_lab("seed-basic", prefix=prefix())
    lab.start_dns({NAME: lab.host("beta").address})
    m = Mesh(lab)
    netcfg = m.net_yaml()
    netcfg["peers"]["beta"]["endPoint"] = f"{NAME}:50000"
    try:
        for h in m.hosts:
            m.start(h, net=netcfg)
        m.wait_started(30)
        yield m
    finally:
        dnsmasq: Optional[int] = None
        try:
            dnsmasq = int(dns.server(lab).path(dns.PID_FILE).read_text())
            os.kill(dnsmasq, signal.SIGCONT)
        except (OSError, ValueError):
            pass
        m.close()


def resolve_error(mesh: Mesh, host: str) -> Optional[str]:
    beta = ((mesh.status(host) or {}).get("resolve") or {}).get("beta") or {}
    return beta.get("error") if beta.get("address") == mesh.lab.host("beta").address else None


@pytest.mark.timeout(90)
def test_a_dns_server_that_stops_answering_drops_no_static_node(dyn_mesh: Mesh) -> None:
    mesh, lab = dyn_mesh, dyn_mesh.lab
    wait_for(mesh.all_ping, 30, 0.2, "every pair pings, beta by its name")
    members = [h for h in mesh.hosts if h != "beta"]
    dnsmasq = int(dns.server(lab).path(dns.PID_FILE).read_text())
    with Pings(mesh) as pings:
        wait_recovered(pings, time.time(), "pings running")
        os.kill(dnsmasq, signal.SIGSTOP)  # queries go unanswered: look-ups hang, then time out
        lab.isolate_host("beta")  # quiet: every member looks beta up every 2 s
        try:
            wait_for(lambda: all(resolve_error(mesh, h) for h in members), 20, 0.5, "look-ups failing")
        finally:
            lab.reconnect_host("beta")
        back = time.time()
        t1 = wait_recovered(pings, back, "every pair answers again") + 1.0
        wait_for(lambda: time.time() > t1, 5, 0.1)
        recovered, lost = report("DNS hung, beta unplugged for a while", pings, back, t1)
        # A hung resolver must not hold up the exit either.
        started = time.monotonic()
        assert mesh.stop("delta", timeout=10) == 0
        exit_took = time.monotonic() - started
    print(f"  SIGTERM with the resolver hung: exit after {exit_took:.2f} s")
    figure("DNS hung, beta unplugged for a while", "SIGTERM exits within", exit_took)
    assert exit_took < 3.0
    assert recovered < RECOVER_WITHIN
    for h in members:
        warned = [ln for ln in mesh.log(h).splitlines() if "cannot resolve" in ln]
        assert len(warned) == 1 and "keeping" in warned[0], (h, warned)


@pytest.mark.timeout(60)
def test_an_address_change_is_read_at_once_not_polled(whole: Mesh) -> None:
    """The kernel rings a netlink doorbell when an address or a link changes: the agent reads
    its addresses then (and every 30 s), not every second, and a node that moves is reached
    again as soon as its next HELLO and handshake are through."""
    mesh = whole
    status = mesh.status("charlie")["addresses"]
    assert status["watch"] == "events"
    for address in ("192.168.1.34", "192.168.1.3"):  # there and back: the mesh stays as it was
        reads = mesh.status("charlie")["addresses"]["reads"]
        mesh.lab.set_address("charlie", address)
        wait_for(lambda r=reads: mesh.status("charlie")["addresses"]["reads"] > r, 5, 0.02, "addresses read")
        wait_for(lambda: all(mesh.ping(h, "charlie") for h in ("alpha", "beta", "delta")), 20, 0.2, "moved")
    wait_for(mesh.all_ping, 20, 0.2, "every pair pings")


def test_the_address_doorbell_rings_when_an_address_is_added(make_lab: LabFactory) -> None:
    lab = make_lab("seed-basic", prefix=prefix())
    script = (
        "import select, subprocess\n"
        "from wg_netmanager.backends import netlink\n"
        "bell = netlink.address_doorbell()\n"
        "assert bell is not None\n"
        "r, _, _ = select.select([bell], [], [], 0.1)\n"
        "assert not r, 'rang before anything changed'\n"
        "subprocess.run(['ip', 'addr', 'add', '192.0.2.77/32', 'dev', 'lo'], check=True)\n"
        "r, _, _ = select.select([bell], [], [], 5)\n"
        "assert r, 'no event within 5 s'\n"
        "print('rang')\n"
    )
    out = lab.host("charlie").run([PYTHON, "-c", script], timeout=30)
    assert "rang" in out.stdout
