"""Measurements taken on lab hosts from the controller: status socket, underlay counters,
process RSS and CPU time, pings. Shared by bench/convergence.py and bench/nebula.py.

Everything here reads the host from outside (its per-host /run tree, `ip -n`, /proc, raw
ICMP sockets opened in its network namespace), so a measurement costs no process and no
Python start-up inside the namespace, which matters on a loaded machine.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import selectors
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Optional, TypeVar

from lab import Lab

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DIRECT_TTL = 64  # a relaying node decrements the TTL of what it forwards
_LIBC = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_SOL_RAW, _ICMP_FILTER = 255, 1  # linux/icmp.h: a bit mask of the ICMP types not to deliver
_ECHO_REPLY, _ECHO_REQUEST = 0, 8
_PAYLOAD = b"wg_netmanager bench probe\0\0\0\0\0\0\0"  # 32 bytes, an even length for the checksum


def status(lab: Lab, host: str, interface: str = "wg0") -> Optional[dict[str, Any]]:
    """The agent's status JSON, read straight from its socket under the host's /run tree."""
    path = lab.host(host).path(f"/run/wg_netmanager/{interface}.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(path))
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return json.loads(b"".join(chunks))
    except (OSError, ValueError):
        return None


def ping(lab: Lab, a: str, ip: str, timeout: float = 0.5) -> Optional[int]:
    """TTL of the reply if `a` reaches `ip`, else None."""
    return ttls(lab, [(a, "")], {"": ip}, timeout)[(a, "")]


def _icmp_sockets(lab: Lab, hosts: Iterable[str]) -> dict[str, socket.socket]:
    """One raw ICMP socket per host, each opened inside the host's network namespace.
    A socket stays in the namespace it was made in, so a short-lived thread joins each
    namespace in turn (setns changes only the calling thread) and the caller keeps its own."""
    out: dict[str, socket.socket] = {}
    failed: list[BaseException] = []

    def work() -> None:
        try:
            for h in hosts:
                fd = os.open(f"/run/netns/{lab.host(h).netns}", os.O_RDONLY)
                try:
                    if _LIBC.setns(fd, _CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns {lab.host(h).netns}: {os.strerror(err)}")
                finally:
                    os.close(fd)
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                s.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~(1 << _ECHO_REPLY) & 0xFFFFFFFF))
                s.setblocking(False)
                out[h] = s
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)

    t = threading.Thread(target=work, name="probe-setns")
    t.start()
    t.join()
    if failed:
        for s in out.values():
            s.close()
        raise failed[0]
    return out


def _echo(ident: int, seq: int) -> bytes:
    body = struct.pack("!BBHHH", _ECHO_REQUEST, 0, 0, ident, seq) + _PAYLOAD
    total = sum(struct.unpack(f"!{len(body) // 2}H", body))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return body[:2] + struct.pack("!H", ~total & 0xFFFF) + body[4:]


def ttls(
    lab: Lab,
    pairs: Iterable[tuple[str, str]],
    ips: dict[str, str],
    timeout: float = 0.5,
    in_flight: int = 128,
    slot: float = 0.02,
) -> dict[tuple[str, str], Optional[int]]:
    """Ping every pair once; TTL of the reply per pair, None if none came within `timeout`
    seconds of sending (or the source has no route yet).

    The controller sends and reads echo requests on raw sockets in the sources' namespaces: no
    process per ping, so a round over thousands of pairs costs the machine little besides the
    mesh's own work of carrying them. At most `in_flight` requests are outstanding, each holding
    its place until answered or for `slot` seconds (it still counts until `timeout`): a mesh
    that answers paces the round itself, and pairs that do not answer yet cost at most
    in_flight / slot requests per second, not a timeout each. Every pair is sent its request in
    every round, which matters for Nebula: it sets a tunnel up when traffic asks for one."""
    pairs = list(pairs)
    if len(pairs) > 0xFFFF:
        raise ValueError(f"{len(pairs)} pairs: at most 65535 per round (16-bit sequence numbers)")
    result: dict[tuple[str, str], Optional[int]] = dict.fromkeys(pairs)
    if not pairs:
        return result
    socks = _icmp_sockets(lab, sorted({a for a, _ in pairs}))
    ident = int.from_bytes(os.urandom(2), "big")  # a late reply from an earlier round never matches
    todo = iter(enumerate(pairs))  # the sequence number is the pair's index
    pending: dict[int, float] = {}  # seq -> deadline for its answer, oldest first
    busy: dict[int, float] = {}  # seq -> when it gives up its in-flight place, oldest first
    sent_all = False
    try:
        with selectors.DefaultSelector() as sel:
            for h, s in socks.items():
                sel.register(s, selectors.EVENT_READ, h)
            while True:
                now = time.monotonic()
                for queue in (pending, busy):
                    while queue and next(iter(queue.values())) <= now:
                        del queue[next(iter(queue))]
                while not sent_all and len(busy) < in_flight:
                    if (item := next(todo, None)) is None:
                        sent_all = True
                        break
                    seq, (a, b) = item
                    try:
                        socks[a].sendto(_echo(ident, seq), (ips[b], 0))
                    except OSError:  # ENETUNREACH while the tunnel interface is not there yet
                        continue
                    pending[seq], busy[seq] = now + timeout, now + slot
                if sent_all and not pending:
                    return result
                # Wake for the next answer deadline, or for a place to free up while some wait.
                wake = next(iter(pending.values()), math.inf)
                if not sent_all and busy:
                    wake = min(wake, next(iter(busy.values())))
                for key, _ in sel.select(max(0.0, wake - time.monotonic())):
                    for seq, ttl in _replies(key.fileobj, ident):  # type: ignore[arg-type]
                        pair = pairs[seq] if seq < len(pairs) else None
                        if pair and pair[0] == key.data and seq in pending:
                            del pending[seq]
                            busy.pop(seq, None)
                            result[pair] = ttl
    finally:
        for s in socks.values():
            s.close()


def _replies(sock: socket.socket, ident: int) -> Iterator[tuple[int, int]]:
    """(sequence number, TTL) of every echo reply with `ident` waiting on `sock`."""
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return
        ihl = (data[0] & 0x0F) * 4
        if len(data) >= ihl + 8:
            kind, _, _, rid, seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if kind == _ECHO_REPLY and rid == ident:
                yield seq, data[8]  # the IP header's TTL


def wait_until(
    cond: Callable[[], Any], since: float, timeout: float, interval: float = 0.05
) -> Optional[float]:
    """Poll `cond`; seconds from `since` (a monotonic time) to the first truthy answer,
    or None after `timeout` seconds. A benchmark records a timeout rather than dying."""
    while True:
        if cond():
            return time.monotonic() - since
        if time.monotonic() - since > timeout:
            return None
        time.sleep(interval)


def wait_all(
    sample: Callable[[], T],
    conds: dict[str, Callable[[T], Any]],
    since: float,
    timeout: float,
    interval: float = 0.05,
) -> dict[str, Optional[float]]:
    """Like `wait_until` for several conditions on one clock and one measurement: each round
    takes one `sample()` (e.g. every status and one ping round) and checks on it every
    condition not yet met, so a condition that implies another is never met before it.
    Seconds from `since` to the end of the first round each one held in; None for those still
    unmet after `timeout` seconds."""
    out: dict[str, Optional[float]] = dict.fromkeys(conds)
    while True:
        value = sample()
        elapsed = time.monotonic() - since
        for k, cond in conds.items():
            if out[k] is None and cond(value):
                out[k] = elapsed
        if all(v is not None for v in out.values()) or elapsed > timeout:
            return out
        time.sleep(interval)


def netns_pids(lab: Lab, host: str) -> list[int]:
    r = subprocess.run(
        ["ip", "netns", "pids", lab.host(host).netns], capture_output=True, text=True, check=False
    )
    return [int(p) for p in r.stdout.split()]


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def find_pid(lab: Lab, host: str, name: str) -> Optional[int]:
    """The first process called `name` (its /proc comm) in the host's namespace."""
    return next((p for p in netns_pids(lab, host) if comm(p) == name), None)


def rss_kb(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of `pid` (not of its children), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of stat(5)


def eth0_tx(lab: Lab, host: str) -> tuple[int, int]:
    """(bytes, packets) the host has sent on its underlay interface."""
    r = subprocess.run(
        ["ip", "-n", lab.host(host).netns, "-s", "-j", "link", "show", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    )
    tx = json.loads(r.stdout)[0]["stats64"]["tx"]
    return int(tx["bytes"]), int(tx["packets"])


@dataclass
class Idle:
    """Per-node means over an idle window."""

    tx_bytes_s: float
    tx_pkts_s: float
    rss_mb: float  # the daemon (agent or nebula)
    cpu_pct: float  # % of one core, the daemon
    wg_rss_mb: Optional[float] = None  # wireguard-go, when there is one
    wg_cpu_pct: Optional[float] = None


def _mean(xs: list[float]) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def measure_idle(lab: Lab, daemons: dict[str, int], window: float = 10.0, helper: str = "") -> Idle:
    """Underlay tx counters of every host in `daemons` (host -> daemon pid) and CPU of the
    daemon (and of the `helper` process, e.g. wireguard-go) over `window` seconds."""
    hosts = list(daemons)
    helpers = {h: find_pid(lab, h, helper) for h in hosts} if helper else {}
    procs = list(daemons.values()) + [p for p in helpers.values() if p]

    def snapshot() -> tuple[dict[str, tuple[int, int]], dict[int, Optional[float]]]:
        return {h: eth0_tx(lab, h) for h in hosts}, {p: cpu_seconds(p) for p in procs}

    t0 = time.monotonic()
    tx0, cpu0 = snapshot()
    time.sleep(max(0.0, window - (time.monotonic() - t0)))
    tx1, cpu1 = snapshot()
    dt = time.monotonic() - t0

    def cpu_pct(pid: Optional[int]) -> list[float]:
        a, b = cpu0.get(pid or -1), cpu1.get(pid or -1)
        return [100 * (b - a) / dt] if a is not None and b is not None else []

    n = len(hosts)
    rss = [r / 1024 for p in daemons.values() if (r := rss_kb(p))]
    wg_rss = [r / 1024 for p in helpers.values() if p and (r := rss_kb(p))]
    return Idle(
        tx_bytes_s=sum(tx1[h][0] - tx0[h][0] for h in hosts) / dt / n,
        tx_pkts_s=sum(tx1[h][1] - tx0[h][1] for h in hosts) / dt / n,
        rss_mb=_mean(rss) or 0.0,
        cpu_pct=_mean([c for p in daemons.values() for c in cpu_pct(p)]) or 0.0,
        wg_rss_mb=_mean(wg_rss),
        wg_cpu_pct=_mean([c for p in helpers.values() for c in cpu_pct(p)]),
    )


def udp_socket(pid: int, port: int) -> Optional[tuple[int, int]]:
    """(bytes waiting, datagrams dropped) of the UDP socket bound to `port` in the network
    namespace of `pid` (/proc/PID/net/udp): the drops are what overflowed its receive buffer,
    counted for that one socket (/proc/net/snmp's RcvbufErrors are the namespace's)."""
    try:
        with open(f"/proc/{pid}/net/udp") as f:
            rows = [line.split() for line in f][1:]
    except OSError:
        return None
    for row in rows:  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        if int(row[1].split(":")[1], 16) == port:
            return int(row[4].split(":")[1], 16), int(row[12])
    return None
