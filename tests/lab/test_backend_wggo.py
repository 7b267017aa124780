"""The wireguard-go backend against the real thing: two namespaces joined by a veth pair.

Each node's backend runs in a driver subprocess inside its namespace (so the test can
`kill -9` it and start another one that must adopt the interface). Interface names are unique
per run, so the shared /var/run/wireguard directory never sees a clash.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wg_netmanager.backends.keys import generate_private_key, public_key
from wg_netmanager.backends.uapi import UapiClient, socket_path

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PROTO = 158  # netlink.RTPROT_WG_NETMANAGER
B_TO_C = "198.51.100.2"  # b's address on its link to c

DRIVER = r"""
import json, sys
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from wg_netmanager.backends import netlink
from wg_netmanager.backends import select_backend
from wg_netmanager.backends.uapi import parse_endpoint
from wg_netmanager.core.model import DesiredState, InterfaceSettings, PeerSpec

ifname, state_dir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
b = select_backend(kind, ifname, state_dir)
for line in sys.stdin:
    req = json.loads(line)
    op = req["op"]
    try:
        res = None
        if op == "up":  # the private key arrives on stdin, never in argv
            b.up(InterfaceSettings(ifname, IPv4Interface(req["address"]), req["port"], req["key"]))
            res = {"public_key": b.public_key, "listen_port": b.listen_port}
        elif op == "apply":
            peers = tuple(
                PeerSpec(p["key"], parse_endpoint(p.get("endpoint", "")),
                         tuple(IPv4Network(n) for n in p["ips"]), p.get("keepalive", 0))
                for p in req["peers"]
            )
            b.apply(DesiredState(peers, tuple(IPv4Network(n) for n in req["routes"]),
                                 req.get("forwarding", False)))
        elif op == "stats":
            res = {k: {"endpoint": str(s.endpoint) if s.endpoint else None,
                       "handshake": s.last_handshake, "rx": s.rx_bytes, "tx": s.tx_bytes}
                   for k, s in b.stats().items()}
        elif op == "peers":
            res = {k: sorted(map(str, p.allowed_ips)) for k, p in b.control.get().peers.items()}
        elif op == "down":
            b.down()
        elif op == "hello":  # startup (imports) done; lets the test time `up` alone
            pass
        print(json.dumps({"ok": True, "result": res}), flush=True)
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def wait_until(condition: Any, timeout: float, what: str, step: float = 0.02) -> float:
    """Poll `condition` until true; return the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


class Driver:
    def __init__(self, ns: str, ifname: str, state_dir: Path, kind: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO / "agent" / "src")}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", DRIVER, ifname, str(state_dir), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def call(self, op: str, timeout: float = 20.0, **kw: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"driver did not answer {op} within {timeout}s"
        reply = json.loads(self.proc.stdout.readline())
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@dataclass
class Node:
    ns: str
    ifname: str
    underlay: str
    wg_ip: str
    port: int
    state_dir: Path
    key: str = field(default_factory=generate_private_key, repr=False)
    drivers: list[Driver] = field(default_factory=list)

    @property
    def pub(self) -> str:
        return public_key(self.key)

    def driver(self, kind: str = "wireguard-go") -> Driver:
        d = Driver(self.ns, self.ifname, self.state_dir, kind)
        self.drivers.append(d)
        d.call("hello")
        return d

    def up(self, d: Driver) -> Any:
        return d.call("up", address=f"{self.wg_ip}/24", port=self.port, key=self.key)

    def ping(self, addr: str) -> bool:
        return sh("ip", "netns", "exec", self.ns, "ping", "-c1", "-W1", addr, check=False).returncode == 0

    def routes(self) -> set[str]:
        out = sh("ip", "-n", self.ns, "-j", "route", "show", "proto", str(PROTO)).stdout
        return {r["dst"] if "/" in r["dst"] else r["dst"] + "/32" for r in json.loads(out or "[]")}

    def ifindex(self) -> int | None:
        out = sh("ip", "-n", self.ns, "-j", "link", "show", self.ifname, check=False)
        return json.loads(out.stdout)[0]["ifindex"] if out.returncode == 0 else None

    def daemon_pids(self) -> list[int]:
        """wireguard-go processes serving exactly our interface name (nothing else is touched)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(argv) >= 2 and argv[0].endswith(b"wireguard-go") and argv[1] == self.ifname.encode():
                pids.append(int(entry.name))
        return pids


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node, Node]]:
    """a -- b -- c: a and c each share a veth link with b only (b can be their gateway)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    for tool in ("wireguard-go", "ping", "ip"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} (scripts/apt-packages.txt)")
    tag = "wgtb" + os.urandom(2).hex()
    a = Node(f"{tag}a", f"{tag}wa", "192.0.2.1", "10.1.1.1", 51001, tmp_path / "a")
    b = Node(f"{tag}b", f"{tag}wb", "192.0.2.2", "10.1.1.2", 51002, tmp_path / "b")
    c = Node(f"{tag}c", f"{tag}wc", "198.51.100.3", "10.1.1.3", 51003, tmp_path / "c")
    try:
        for n in (a, b, c):
            sh("ip", "netns", "add", n.ns)
            sh("ip", "-n", n.ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"{tag}va", "netns", a.ns, "type", "veth", "peer", f"{tag}vb", "netns", b.ns)
        sh("ip", "link", "add", f"{tag}vc", "netns", c.ns, "type", "veth", "peer", f"{tag}vd", "netns", b.ns)
        for n, veth, addr in (
            (a, f"{tag}va", a.underlay),
            (b, f"{tag}vb", b.underlay),
            (c, f"{tag}vc", c.underlay),
            (b, f"{tag}vd", B_TO_C),
        ):
            sh("ip", "-n", n.ns, "addr", "add", f"{addr}/24", "dev", veth)
            sh("ip", "-n", n.ns, "link", "set", veth, "up")
        yield a, b, c
    finally:
        for n in (a, b, c):
            for d in n.drivers:
                d.kill()
            sh("ip", "-n", n.ns, "link", "del", n.ifname, check=False)
            for pid in n.daemon_pids():
                os.kill(pid, signal.SIGKILL)
            sh("ip", "netns", "del", n.ns, check=False)
            Path(f"/var/run/wireguard/{n.ifname}.sock").unlink(missing_ok=True)


def peer(n: Node, *ips: str, endpoint: bool = True, host: str = "") -> dict[str, Any]:
    ep = f"{host or n.underlay}:{n.port}" if endpoint else None
    return {"key": n.pub, "endpoint": ep, "ips": list(ips)}


def test_wireguard_go_backend_end_to_end(nodes: tuple[Node, Node, Node]) -> None:
    a, b, _ = nodes
    c_pub = public_key(generate_private_key())  # a peer that never answers
    da, db = a.driver(), b.driver()

    t0 = time.monotonic()
    assert a.up(da) == {"public_key": a.pub, "listen_port": a.port}
    t_up = time.monotonic() - t0
    b.up(db)
    # b also answers for 10.1.1.4, the address we move between a's peers below.
    sh("ip", "-n", b.ns, "addr", "add", "10.1.1.4/32", "dev", b.ifname)

    # Two peers on a: b (direct), c (owns 10.1.1.4, unreachable).
    da.call(
        "apply",
        peers=[peer(b, "10.1.1.2/32"), {"key": c_pub, "ips": ["10.1.1.4/32"]}],
        routes=["10.1.1.2/32", "10.1.1.4/32"],
    )
    db.call("apply", peers=[peer(a, "10.1.1.1/32")], routes=["10.1.1.1/32"])
    assert a.routes() == {"10.1.1.2/32", "10.1.1.4/32"}
    assert b.routes() == {"10.1.1.1/32"}

    t_ping = wait_until(lambda: a.ping("10.1.1.2"), 10, "a ping through the tunnel")
    stats = da.call("stats")
    assert stats[b.pub]["handshake"] > time.time() - 60
    assert stats[b.pub]["rx"] > 0 and stats[b.pub]["tx"] > 0
    assert stats[b.pub]["endpoint"] == f"{b.underlay}:{b.port}"
    assert stats[c_pub]["handshake"] == 0
    assert not a.ping("10.1.1.4")  # owned by c, which is not there

    # Move 10.1.1.4 from c to b (e.g. b became c's gateway); reachable at once.
    da.call(
        "apply",
        peers=[peer(b, "10.1.1.2/32", "10.1.1.4/32", endpoint=False), {"key": c_pub, "ips": []}],
        routes=["10.1.1.2/32", "10.1.1.4/32"],
    )
    assert da.call("peers") == {b.pub: ["10.1.1.2/32", "10.1.1.4/32"], c_pub: []}
    t_move = wait_until(lambda: a.ping("10.1.1.4"), 5, "10.1.1.4 via b after the move")

    # Drop c and its route; turn forwarding on (a relays).
    da.call("apply", peers=[peer(b, "10.1.1.2/32", "10.1.1.4/32")], routes=["10.1.1.2/32"], forwarding=True)
    assert set(da.call("peers")) == {b.pub}
    assert a.routes() == {"10.1.1.2/32"}
    fwd = sh("ip", "netns", "exec", a.ns, "cat", f"/proc/sys/net/ipv4/conf/{a.ifname}/forwarding").stdout
    assert fwd.strip() == "1"

    # The agent dies hard: the interface and its daemon stay; a new agent adopts them.
    index, pids = a.ifindex(), a.daemon_pids()
    assert index is not None and len(pids) == 1
    da.kill()
    da2 = a.driver()
    t0 = time.monotonic()
    a.up(da2)
    t_adopt = time.monotonic() - t0
    assert a.ifindex() == index and a.daemon_pids() == pids  # adopted, not recreated
    da2.call("apply", peers=[peer(b, "10.1.1.2/32", "10.1.1.4/32")], routes=["10.1.1.2/32"], forwarding=True)
    assert a.routes() == {"10.1.1.2/32"}
    assert a.ping("10.1.1.2")

    # down: routes and interface go, the daemon exits, the socket disappears.
    t0 = time.monotonic()
    da2.call("down")
    t_down = time.monotonic() - t0
    assert a.ifindex() is None
    assert a.routes() == set()
    assert not Path(f"/var/run/wireguard/{a.ifname}.sock").exists()
    wait_until(lambda: not a.daemon_pids(), 5, "wireguard-go to exit")
    print(
        f"\nwireguard-go backend: up {t_up * 1e3:.0f} ms, first ping {t_ping * 1e3:.0f} ms, "
        f"move {t_move * 1e3:.0f} ms, adopt {t_adopt * 1e3:.0f} ms, down {t_down * 1e3:.0f} ms"
    )


def test_up_refuses_an_interface_it_did_not_create(nodes: tuple[Node, Node, Node]) -> None:
    a, _, _ = nodes
    sh("ip", "netns", "exec", a.ns, "wireguard-go", a.ifname)
    d = a.driver()
    with pytest.raises(RuntimeError, match="not created by wg_netmanager"):
        a.up(d)
    d.call("down")  # must leave the foreign interface alone
    assert a.ifindex() is not None


def test_existing_interface_is_adopted_not_owned(nodes: tuple[Node, Node, Node]) -> None:
    a, b, _ = nodes
    # Someone else made a's interface, with their own key, port and an extra address.
    sh("ip", "netns", "exec", a.ns, "wireguard-go", a.ifname)
    owner_key = generate_private_key()
    uapi = UapiClient(socket_path(a.ifname))
    wait_until(uapi.exists, 5, "the hand-made interface's socket")
    uapi.set_device(private_key=owner_key, listen_port=a.port)
    sh("ip", "-n", a.ns, "addr", "add", "10.99.0.1/24", "dev", a.ifname)

    da = a.driver("existing")
    got = a.up(da)  # a.key is NOT the interface's key: it must be read back, not written
    assert got == {"public_key": public_key(owner_key), "listen_port": a.port}
    assert uapi.get().private_key == owner_key
    a.key = owner_key  # what b must be told

    db = b.driver()
    b.up(db)
    da.call("apply", peers=[peer(b, "10.1.1.2/32")], routes=["10.1.1.2/32"])
    db.call("apply", peers=[peer(a, "10.1.1.1/32")], routes=[])
    wait_until(lambda: a.ping("10.1.1.2"), 10, "ping over the adopted interface")

    da.call("down")
    assert a.ifindex() is not None and a.routes() == set()
    addrs = sh("ip", "-n", a.ns, "-j", "addr", "show", a.ifname).stdout
    assert "10.99.0.1" in addrs and "10.1.1.1" in addrs


def test_gateway_relays_with_forwarding(nodes: tuple[Node, Node, Node]) -> None:
    """a and c only reach b; with forwarding on, b relays a <-> c inside WireGuard."""
    a, b, c = nodes
    da, db, dc = a.driver(), b.driver(), c.driver()
    for n, d in ((a, da), (b, db), (c, dc)):
        n.up(d)
    da.call("apply", peers=[peer(b, "10.1.1.2/32", "10.1.1.3/32")], routes=["10.1.1.2/32", "10.1.1.3/32"])
    dc.call(
        "apply",
        peers=[peer(b, "10.1.1.2/32", "10.1.1.1/32", host=B_TO_C)],
        routes=["10.1.1.2/32", "10.1.1.1/32"],
    )
    gateway_peers = [peer(a, "10.1.1.1/32"), peer(c, "10.1.1.3/32")]
    db.call("apply", peers=gateway_peers, routes=["10.1.1.1/32", "10.1.1.3/32"], forwarding=False)
    wait_until(lambda: a.ping("10.1.1.2") and c.ping("10.1.1.2"), 10, "both ends reach the gateway")
    assert not a.ping("10.1.1.3")  # b does not relay yet

    db.call("apply", peers=gateway_peers, routes=["10.1.1.1/32", "10.1.1.3/32"], forwarding=True)
    t = wait_until(lambda: a.ping("10.1.1.3"), 5, "a reaches c through gateway b")
    global_fwd = sh("ip", "netns", "exec", b.ns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()
    assert global_fwd == "0"  # only b's WireGuard interface forwards
    print(f"\nrelay through gateway: first ping {t * 1e3:.0f} ms after forwarding on")
