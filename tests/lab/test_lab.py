"""The lab itself, without any VPN: reachability, NAT behaviour, per-host files, teardown."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from labkit import REPO, LabFactory, new_prefix, skip_unless_root

from lab import Host, Lab
from lab import containers as ctr
from lab.testing import wait_until

pytestmark = pytest.mark.lab

# Replies to every datagram with the source address:port it saw (what a STUN server does).
UDP_ECHO = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(port)))
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        data, addr = key.fileobj.recvfrom(2048)
        key.fileobj.sendto(f"{addr[0]}:{addr[1]}".encode(), addr)
"""
# One socket sends to each destination (retrying until the echo server is up) and prints
# the source address each destination observed.
UDP_ASK = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40000))
s.settimeout(0.2)
seen = {}
deadline = time.monotonic() + 5
for dest in sys.argv[1:]:
    host, port = dest.rsplit(":", 1)
    while dest not in seen and time.monotonic() < deadline:
        s.sendto(b"?", (host, int(port)))
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            continue
        seen[f"{addr[0]}:{addr[1]}"] = data.decode()
print(" ".join(seen.get(d, "-") for d in sys.argv[1:]))
"""


def pings(h: Host, address: str, wait: float = 1.0) -> bool:
    return h.run(["ping", "-c1", "-W", str(wait), address], check=False, timeout=5).returncode == 0


def blocked(h: Host, address: str) -> bool:
    return not pings(h, address, wait=0.3)


def observed(lab: Lab, client: str, server: str, dests: list[str]) -> list[tuple[str, int]]:
    """Source (address, port) of one UDP socket on `client` as seen by each of `dests`."""
    ports = sorted({d.rsplit(":", 1)[1] for d in dests})
    echo = lab.host(server).popen(["python3", "-c", UDP_ECHO, *ports])
    try:
        out = lab.host(client).run(["python3", "-c", UDP_ASK, *dests], timeout=10).stdout.split()
    finally:
        echo.kill()
        echo.wait()
    assert "-" not in out, f"no answer from some of {dests}: {out}"
    return [(a, int(p)) for a, p in (o.rsplit(":", 1) for o in out)]


def with_route(h: Host, net: str, via: str) -> None:
    h.run(["ip", "route", "replace", net, "via", via])


@pytest.fixture(scope="module")
def seed(module_lab: LabFactory) -> Lab:
    return module_lab("seed-basic")


def test_seed_basic_reachability(seed: Lab) -> None:
    alpha, beta, charlie, delta = (seed.host(n) for n in ("alpha", "beta", "charlie", "delta"))
    assert pings(charlie, beta.address), "a LAN host reaches the internet"
    assert pings(charlie, delta.address), "hosts on one LAN reach each other"
    assert pings(alpha, beta.address), "alpha's firewall lets its own traffic out and back"
    assert blocked(beta, alpha.address), "alpha's firewall drops unsolicited inbound"
    assert blocked(beta, "203.0.113.1"), "the home router drops unsolicited inbound (input)"
    # Even with a route into the LAN, the router's forward hook drops unsolicited packets.
    with_route(beta, "192.168.1.0/24", "203.0.113.1")
    assert blocked(beta, charlie.address), "the home router drops unsolicited inbound (forward)"


def test_cone_router_keeps_source_port(seed: Lab) -> None:
    seen = observed(seed, "charlie", "beta", ["198.51.100.2:7000", "198.51.100.2:7001"])
    assert seen[0] == seen[1] == ("203.0.113.1", 40000), seen


def test_each_host_has_its_own_files(seed: Lab) -> None:
    charlie, delta = seed.host("charlie"), seed.host("delta")
    charlie.path("/etc/wg_netmanager/net.yaml").write_text("charlie\n")
    assert charlie.run(["cat", "/etc/wg_netmanager/net.yaml"]).stdout == "charlie\n"
    assert delta.run(["ls", "/etc/wg_netmanager", "/var/lib/wg_netmanager"]).stdout.split() == [
        "/etc/wg_netmanager:",
        "/var/lib/wg_netmanager:",
    ]
    for h, port in ((charlie, "51820"), (delta, "51821")):
        h.run(["wireguard-go", "wg0"])
        h.run(["wg", "set", "wg0", "listen-port", port])
    for h, port in ((charlie, "51820"), (delta, "51821")):
        assert h.run(["wg", "show", "interfaces"]).stdout.split() == ["wg0"]
        assert h.run(["wg", "show", "wg0", "listen-port"]).stdout.strip() == port
        assert h.path("/var/run/wireguard/wg0.sock").is_socket()
    assert seed.host("beta").run(["wg", "show", "interfaces"]).stdout.split() == []


def test_roaming_and_isolation(seed: Lab) -> None:
    charlie, beta = seed.host("charlie"), seed.host("beta")
    seed.set_address("charlie", "192.168.1.23")
    assert charlie.address == "192.168.1.23"
    assert "192.168.1.23/24" in charlie.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
    assert pings(charlie, beta.address), "default route restored after the address change"
    seed.isolate_host("beta")
    assert blocked(charlie, beta.address)
    seed.reconnect_host("beta")
    wait_until(lambda: pings(charlie, beta.address), 5, "beta reachable again")
    seed.set_address("charlie", "192.168.1.3")


def test_double_nat(make_lab: LabFactory) -> None:
    lab = make_lab("seed-double-nat")
    alpha, beta, charlie, delta = (lab.host(n) for n in ("alpha", "beta", "charlie", "delta"))
    assert pings(delta, beta.address) and pings(charlie, beta.address)
    assert pings(delta, charlie.address), "LAN 2 reaches LAN 1 (through router2's NAT)"
    with_route(charlie, "192.168.2.0/24", "192.168.1.2")
    assert blocked(charlie, delta.address), "router2 drops unsolicited inbound from LAN 1"
    assert blocked(beta, alpha.address) and pings(alpha, beta.address)
    seen = observed(lab, "delta", "beta", ["198.51.100.2:7000"])
    assert seen[0][0] == "203.0.113.1", "the internet sees router1's address"


def test_hard_nat_is_symmetric(make_lab: LabFactory) -> None:
    lab = make_lab("hard-nat")
    assert pings(lab.host("charlie"), lab.host("delta").address)
    assert blocked(lab.host("beta"), "203.0.113.2")
    for client, wan in (("alpha", "203.0.113.2"), ("charlie", "203.0.113.1")):
        assert pings(lab.host(client), lab.host("beta").address)
        seen = observed(lab, client, "beta", ["198.51.100.2:7000", "198.51.100.2:7001"])
        assert [a for a, _ in seen] == [wan, wan]
        assert seen[0][1] != seen[1][1], f"{client}: a new source port per destination: {seen}"


def test_hard_nat_2gw(make_lab: LabFactory) -> None:
    lab = make_lab("hard-nat-2gw")
    assert pings(lab.host("charlie"), lab.host("echo").address)
    ask = ["python3", "-c", UDP_ASK, "198.51.100.2:7000", "198.51.100.5:7000"]
    echoes = [lab.host(n).popen(["python3", "-c", UDP_ECHO, "7000"]) for n in ("beta", "echo")]
    try:
        out = lab.host("alpha").run(ask, timeout=10).stdout.split()
    finally:
        for p in echoes:
            p.kill()
            p.wait()
    assert "-" not in out and out[0] != out[1], f"two public hosts see two ports: {out}"


def test_scale_20(make_lab: LabFactory) -> None:
    lab = make_lab("scale-20")
    assert len(lab.mesh_hosts) == 20
    target = lab.host("h001").address
    unreachable = [n for n in lab.mesh_hosts[1:] if not pings(lab.host(n), target)]
    assert not unreachable


def test_up_replaces_leftover_and_down_leaves_nothing() -> None:
    skip_unless_root()
    prefix = new_prefix()
    first = Lab.up("seed-basic", prefix=prefix)
    first.host("charlie").run(["wireguard-go", "wg0"])
    sleeper = first.host("alpha").popen(["sleep", "600"])
    # A second `up` with the same prefix (e.g. after a crash) replaces the first lab.
    lab = Lab.up("seed-basic", prefix=prefix)
    assert sleeper.wait(timeout=5) != 0, "the old lab's processes were killed"
    try:
        lab.host("delta").run(["wireguard-go", "wg0"])
        pids = [int(p) for ns in _netns(prefix) for p in _run(["ip", "netns", "pids", ns]).split()]
        assert pids
    finally:
        lab.down()
    wait_until(lambda: not any(_alive(p) for p in pids), 5, "lab processes to exit")
    assert _netns(prefix) == []
    assert prefix not in Path("/proc/self/mountinfo").read_text()
    assert prefix not in _run(["ip", "-o", "link", "show"])
    assert not Path(f"/run/{prefix}-lab").exists()
    if shutil.which("podman"):
        assert ctr.podman("ps", "-a", "-q", "--filter", f"label={ctr.LABEL}={prefix}").stdout == ""


def test_containers(module_lab: LabFactory) -> None:
    skip_unless_root()
    if not shutil.which("podman") or not ctr.image_exists():
        pytest.skip(f"container image {ctr.IMAGE} not built (run lab/setup-image)")
    lab = module_lab("seed-basic", containers=True)
    alpha, beta, charlie = lab.host("alpha"), lab.host("beta"), lab.host("charlie")
    names = ctr.podman("ps", "--format", "{{.Names}}", "--filter", f"label={ctr.LABEL}={lab.prefix}")
    assert sorted(names.stdout.split()) == sorted(f"{lab.prefix}-{n}" for n in lab.mesh_hosts)
    alpha.run(["sh", "-c", "echo alpha > /root/who"])
    assert beta.run(["test", "-e", "/root/who"], check=False).returncode == 1, "separate file systems"
    charlie.path("/etc/wg_netmanager/net.yaml").write_text("charlie\n")
    assert charlie.run(["cat", "/etc/wg_netmanager/net.yaml"]).stdout == "charlie\n"
    assert pings(charlie, beta.address), "containers are on the lab network"
    # OpenRC without being PID 1: the image's entrypoint marks the system booted.
    service = (
        "#!/sbin/openrc-run\ncommand=/bin/sleep\ncommand_args=600\n"
        "command_background=true\npidfile=/run/t.pid\n"
    )
    charlie.run(["sh", "-c", "cat > /etc/init.d/t && chmod 755 /etc/init.d/t"], input=service)
    assert charlie.run(["rc-service", "t", "start"], check=False).returncode == 0
    assert "started" in charlie.run(["rc-service", "t", "status"], check=False).stdout
    ansible = shutil.which("ansible") or str(REPO / ".venv" / "bin" / "ansible")
    if not Path(ansible).exists():
        pytest.skip("ansible not installed (scripts/setup)")
    res = subprocess.run(
        [ansible, "-i", str(lab.inventory), "wg_mesh", "-m", "ansible.builtin.ping"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(lab.mesh_hosts)


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _netns(prefix: str) -> list[str]:
    return [n.split()[0] for n in _run(["ip", "netns", "list"]).splitlines() if n.startswith(f"{prefix}-")]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
