"""Subnet gateways for real (issue 13, part 1): delta routes a LAN of its own, 192.168.50.0/24,
on which a host runs no agent (`sensor`, a namespace of the lab's prefix, so the lab's
teardown removes it). The other nodes reach the sensor through the mesh; the route goes when
delta stops; with `--masquerade` a sensor with no route back to the mesh is reached too.

seed-basic: alpha (a firewalled VPS) reaches delta through NAT or through beta (a static node
and gateway), beta as delta's static node, charlie from the same home LAN as delta.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Optional

import pytest
from labkit import LabFactory
from meshlab import Mesh, wait_for

pytestmark = pytest.mark.lab

LAN = "192.168.50.0/24"
DELTA_LAN = "192.168.50.1/24"
SENSOR = "192.168.50.10"
OTHERS = ["alpha", "beta", "charlie"]


class GatewayMesh(Mesh):
    """delta announces LAN (and masquerades it when `masquerade`)."""

    masquerade = False

    def command(self, host: str, wg_ip: str) -> list[str]:
        cmd = super().command(host, wg_ip)
        if host == "delta":
            cmd += ["--subnet", LAN] + (["--masquerade"] if self.masquerade else [])
        return cmd


def ns_run(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], text=True, capture_output=True, check=check)


def plug_sensor(mesh: Mesh) -> str:
    """A namespace with one veth to delta's: delta is 192.168.50.1 on `lan`, the sensor
    192.168.50.10 with delta as its default gateway. Its name."""
    delta = mesh.lab.host("delta").netns
    ns = f"{mesh.lab.prefix}-sensor"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    ns_run(delta, "ip", "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", ns)
    ns_run(delta, "ip", "addr", "add", DELTA_LAN, "dev", "lan")
    ns_run(delta, "ip", "link", "set", "lan", "up")
    for cmd in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{SENSOR}/24", "dev", "eth0"],
        ["ip", "link", "set", "eth0", "up"],
        ["ip", "route", "add", "default", "via", "192.168.50.1"],
    ):
        ns_run(ns, *cmd)
    return ns


def reaches(mesh: Mesh, host: str, ip: str = SENSOR) -> bool:
    r = mesh.lab.host(host).run(["ping", "-n", "-c1", "-W", "1", ip], check=False, timeout=10)
    return r.returncode == 0


def routed_via(mesh: Mesh, host: str) -> Optional[str]:
    """The name of the node `host`'s status routes LAN to, or None."""
    st = mesh.status(host) or {}
    return next((r["via"] for r in st.get("subnets", {}).get("routes", []) if r["subnet"] == LAN), None)


def kernel_route(mesh: Mesh, host: str) -> str:
    return mesh.lab.host(host).run(["ip", "-4", "route", "show", LAN]).stdout.strip()


@pytest.fixture
def gw_mesh(make_lab: LabFactory) -> Iterator[tuple[GatewayMesh, str]]:
    lab = make_lab("seed-basic")
    mesh = GatewayMesh(lab)
    sensor = plug_sensor(mesh)
    try:
        mesh.start_all()
        mesh.wait_started(30)
        yield mesh, sensor
    finally:
        mesh.close()


@pytest.mark.timeout(120)
def test_a_lan_behind_delta_is_reached_from_every_node_and_dropped_when_delta_stops(
    gw_mesh: tuple[GatewayMesh, str],
) -> None:
    mesh, _ = gw_mesh
    took = wait_for(lambda: all(reaches(mesh, h) for h in OTHERS), 60, 0.2, "the sensor answers everyone")
    print(f"\nthe sensor behind delta answers alpha, beta and charlie {took:.1f} s after the agents answered")
    for h in OTHERS:
        assert routed_via(mesh, h) == "delta", mesh.status(h)
        assert "dev wg0" in kernel_route(mesh, h) and "proto 158" in kernel_route(mesh, h)
    st = mesh.status("delta") or {}
    assert st["subnets"]["own"] == [LAN] and st["subnets"]["refused"] == [], st["subnets"]
    peer = next(p for p in (mesh.status("alpha") or {})["peers"] if p["name"] == "delta")
    assert peer["subnets"] == [LAN]
    # The answers come in on delta's LAN interface, which forwards while delta announces.
    assert mesh.lab.host("delta").run(["sysctl", "-n", "net.ipv4.conf.lan.forwarding"]).stdout.strip() == "1"

    assert mesh.stop("delta") == 0
    wait_for(lambda: all(not kernel_route(mesh, h) for h in OTHERS), 20, 0.2, "LAN routes gone")
    assert all(routed_via(mesh, h) is None for h in OTHERS)
    assert not reaches(mesh, "alpha")
    flag = mesh.lab.host("delta").run(["sysctl", "-n", "net.ipv4.conf.lan.forwarding"]).stdout.strip()
    assert flag == "0", "the LAN interface's forwarding flag is put back"


@pytest.mark.timeout(120)
def test_masquerade_reaches_a_lan_with_no_route_back(gw_mesh: tuple[GatewayMesh, str]) -> None:
    mesh, sensor = gw_mesh
    wait_for(lambda: reaches(mesh, "alpha"), 60, 0.2, "the sensor answers alpha")
    ns_run(sensor, "ip", "route", "del", "default")  # the LAN's router knows nothing of the mesh
    wait_for(lambda: not reaches(mesh, "alpha"), 10, 0.2, "no answer without a route back")
    assert mesh.stop("delta") == 0
    mesh.masquerade = True
    mesh.start("delta")
    mesh.wait_started(30)
    took = wait_for(lambda: all(reaches(mesh, h) for h in OTHERS), 60, 0.2, "answers through masquerading")
    print(f"\nmasqueraded: the sensor answers everyone {took:.1f} s after delta's restart")
    rules = mesh.lab.host("delta").run(["nft", "list", "table", "ip", "wg_netmanager_wg0"]).stdout
    assert "masquerade" in rules and LAN in rules, rules
    assert mesh.stop("delta") == 0
    gone = mesh.lab.host("delta").run(["nft", "list", "tables"]).stdout
    assert "wg_netmanager_wg0" not in gone, gone
