"""Real agents, wireguard-go and real pings on the lab's topologies.

Deadlines here are generous bounds that say "it works"; how fast it works is what
bench/convergence.py measures and prints.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from typing import Any

import pytest
from meshlab import DIRECT_TTL, PYTHON, SEED_BASIC_PATHS, Mesh, wait_for

pytestmark = pytest.mark.lab


def test_seed_basic_converges_to_direct_paths(mesh_on: Any) -> None:
    mesh = mesh_on("seed-basic")
    wait_for(mesh.all_ping, 15, what="every pair pings")
    mesh.wait_paths(SEED_BASIC_PATHS)
    st = mesh.status("alpha")
    assert st is not None and st["converged"] is True
    assert {p["name"]: p["path"] for p in st["peers"]} == {"beta": "static", "charlie": "nat", "delta": "nat"}
    for p in st["peers"]:
        assert set(p) >= {"name", "wgIp", "publicKey", "path", "gateway", "endpoint", "lastHandshake"}
        assert p["lastHandshake"] > 0 and p["rxBytes"] > 0
    for host in mesh.hosts:  # no key in any log
        log = mesh.log(host)
        assert mesh.shared_key not in log
        key = mesh.lab.host(host).path("/var/lib/wg_netmanager/wg0/private.key").read_text().strip()
        assert key not in log
        assert (
            oct(mesh.lab.host(host).path("/var/lib/wg_netmanager/wg0/private.key").stat().st_mode & 0o777)
            == "0o600"
        )


def test_hard_nat_goes_through_a_gateway(mesh_on: Any) -> None:
    mesh = mesh_on("hard-nat")
    wait_for(mesh.all_ping, 15, what="every pair pings")
    assert mesh.paths("alpha")["charlie"] == "gateway"
    assert mesh.ping("alpha", "charlie") == DIRECT_TTL - 1
    wait_for(lambda: mesh.both_ways("charlie", "delta", "lan"), 15, interval=0.5)
    for _ in range(5):  # and it stays so while punching keeps failing
        assert mesh.all_ping(1.0), mesh.unreachable()


def test_double_nat_reachable(mesh_on: Any) -> None:
    mesh = mesh_on("seed-double-nat")
    wait_for(mesh.all_ping, 15, what="every pair pings")
    wait_for(lambda: mesh.status("beta")["converged"], 5)


def test_restart_roaming_and_leave(mesh_on: Any) -> None:
    mesh = mesh_on("seed-basic")
    wait_for(mesh.all_ping, 15, what="every pair pings")
    key_before = mesh.status("charlie")["publicKey"]

    # kill -9 and start again: same identity, pairs back
    mesh.procs["charlie"].send_signal(signal.SIGKILL)
    mesh.procs.pop("charlie").wait(5)
    mesh.start("charlie")
    mesh.wait_started()
    wait_for(lambda: all(mesh.ping(a, b) for a, b in mesh.pairs() if "charlie" in (a, b)), 15, what="back")
    assert mesh.status("charlie")["publicKey"] == key_before

    # roaming: charlie gets a new address on its LAN
    mesh.lab.set_address("charlie", "192.168.1.33")
    wait_for(lambda: all(mesh.ping(h, "charlie") for h in ("alpha", "beta", "delta")), 15, what="roamed")

    # SIGTERM: peers are told, routes and the interface go away
    assert mesh.stop("delta") == 0
    wait_for(lambda: "delta" not in mesh.paths("beta"), 5, what="beta forgets delta")
    links = mesh.lab.host("delta").run(["ip", "-br", "link"]).stdout
    assert "wg0" not in links


def test_gateway_loss_reroutes(mesh_on: Any) -> None:
    mesh = mesh_on("hard-nat-2gw")
    wait_for(mesh.all_ping, 15, what="every pair pings")
    gw = next(p["gateway"] for p in mesh.status("alpha")["peers"] if p["name"] == "charlie")
    assert gw in ("beta", "echo")
    other = "echo" if gw == "beta" else "beta"
    mesh.lab.isolate_host(gw)
    survivors = [h for h in mesh.hosts if h != gw]
    wait_for(
        lambda: all(mesh.ping(a, b) for a in survivors for b in survivors if a != b),
        20,
        what=f"reroute around {gw}",
    )
    assert next(p["gateway"] for p in mesh.status("alpha")["peers"] if p["name"] == "charlie") == other


def test_forged_claims_are_rejected(mesh_on: Any) -> None:
    """A node holding the shared key that claims an address outside the subnet (or another
    node's), or another node's key, is rejected by the static node and nobody routes to it;
    junk, forgeries and replays are dropped and counted."""
    mesh = mesh_on("seed-basic")
    # Every node joined first: an address no live node holds is free to claim (first come).
    wait_for(lambda: set(mesh.paths("beta")) == {"alpha", "charlie", "delta"}, 15, what="all joined")
    charlie_key = mesh.status("charlie")["publicKey"]
    script = f"""
import base64, os, socket
from ipaddress import IPv4Address
from wg_netmanager.core import messages as m, wire
from wg_netmanager.core.wire import Codec, Identity
BETA = ("198.51.100.2", 50001)
codec = Codec(base64.b64decode({mesh.shared_key!r}), Identity(os.urandom(32)), 77)
mine = base64.b64encode(codec.identity.public).decode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(codec.keyreq(1), BETA)
opened = codec.open(s.recv(2000))
beta, epoch, cookie = opened.sender, opened.epoch, m.decode(opened.msg_type, opened.body).cookie
def hello(name, ip, key):
    t, body = m.encode(m.Hello(m.NodeInfo(name, IPv4Address(ip), key, 50000, 50001), 0, cookie))
    return codec.seal(t, body, beta, epoch)
claims = (("mallory", "8.8.8.8", mine), ("mallory", "10.1.1.3", mine))
for name, ip, key in claims + (("charlie", "10.1.1.3", {charlie_key!r}),):  # not its key
    s.sendto(hello(name, ip, key), BETA)
s.sendto(b"\\x00" * 40, BETA)  # foreign
s.sendto(b"WGNM\\x02\\x01" + bytes(10), BETA)  # truncated
s.sendto(b"WGNM\\x02\\x01" + os.urandom(120), BETA)  # unauthenticated: no shared key
forged = bytearray(hello("charlie", "10.1.1.3", {charlie_key!r}))
forged[6:38] = base64.b64decode({charlie_key!r})  # speak as charlie: mac1 is easy, the rest is not
forged[-16:] = wire.blake(bytes(forged[:-16]), codec.mac1_key(beta), 16)
s.sendto(bytes(forged), BETA)
real = hello("mallory", "8.8.8.8", mine)  # refused, and then only replayed
s.sendto(real, BETA)
s.sendto(real, BETA)  # replayed
"""
    mesh.lab.host("alpha").run([PYTHON, "-c", script], timeout=120)
    wait_for(lambda: mesh.status("beta")["drops"]["rejected"] >= 4, 5, what="rejections counted")
    drops = mesh.status("beta")["drops"]
    assert drops["foreign"] >= 1 and drops["truncated"] >= 1 and drops["unauthenticated"] >= 1
    assert drops["forged"] >= 1 and drops["replayed"] >= 1
    assert all("mallory" not in mesh.paths(h) for h in mesh.hosts)
    assert mesh.status("alpha") is not None
    charlie = [p for p in mesh.status("alpha")["peers"] if p["name"] == "charlie"]
    assert [p["publicKey"] for p in charlie] == [charlie_key]  # still the real one
    routes = mesh.lab.host("beta").run(["ip", "route"]).stdout
    assert "8.8.8.8" not in routes
    # and the mesh is unharmed (a ping can miss while a pair moves from gateway to direct)
    wait_for(mesh.all_ping, 15, what="every pair pings after the attack")


def test_config_errors_exit_2_with_one_line(make_lab: Any) -> None:
    lab = make_lab("seed-basic")
    mesh = Mesh(lab)
    bad = mesh.net_yaml()
    bad["network"]["sharedKey"] = base64.b64encode(os.urandom(16)).decode()
    mesh.write_configs("alpha", bad)
    r = lab.host("alpha").run(
        [PYTHON, "-m", "wg_netmanager", "-c", "/etc/wg_netmanager/net.yaml", "-n", "alpha", "-a", "10.1.1.1"],
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "network.sharedKey" in r.stderr and "Traceback" not in r.stderr
