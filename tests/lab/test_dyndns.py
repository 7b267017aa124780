"""Static nodes by dynamic DNS, for real: dnsmasq in the lab serves the static node's name, the
node moves to a new public address and its record with it, and every member follows.

`pytest -s` prints how long the mesh took to be whole again after the move.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest
from labkit import LabFactory
from meshlab import DIRECT_TTL, Mesh, wait_for

from lab import Lab, dns

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not shutil.which("dnsmasq"), reason="needs dnsmasq (scripts/apt-packages.txt)"),
]

NAME = "beta.dyn.test"
MOVED = "198.51.100.20"  # beta's new address on the internet segment
WHOLE_WITHIN = 30.0  # seconds; a generous bound, the figure printed is what matters


def resolves(lab: Lab, host: str, name: str) -> str | None:
    res = lab.host(host).run(["getent", "ahostsv4", name], check=False, timeout=10)
    return res.stdout.split()[0] if res.returncode == 0 and res.stdout else None


def test_lab_dns_server(make_lab: LabFactory) -> None:
    lab = make_lab("seed-basic")
    assert lab.start_dns({NAME: "198.51.100.2"}) == "198.51.100.53"
    for host in lab.topology.nodes:  # behind the home router and alpha's firewall too
        assert resolves(lab, host, NAME) == "198.51.100.2", host
    lab.set_dns_record(NAME, MOVED)
    assert resolves(lab, "charlie", NAME) == MOVED, "no cache keeps the old address"
    lab.set_dns_record(NAME, None)
    assert resolves(lab, "alpha", NAME) is None
    pid = int(dns.server(lab).path(dns.PID_FILE).read_text())
    lab.down()
    assert subprocess.run(["ps", "-p", str(pid)], capture_output=True).returncode == 1, "dnsmasq is gone"
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{lab.prefix}-" not in namespaces


@pytest.fixture
def dyn_mesh(make_lab: LabFactory) -> Iterator[Mesh]:
    """seed-basic with every member knowing beta, the static node, only by its DNS name."""
    lab = make_lab("seed-basic")
    lab.start_dns({NAME: lab.host("beta").address})
    mesh = Mesh(lab)
    net = mesh.net_yaml()
    net["peers"]["beta"]["endPoint"] = f"{NAME}:50000"
    try:
        for host in mesh.hosts:
            mesh.start(host, net=net)
        mesh.wait_started()
        yield mesh
    finally:
        mesh.close()


def statuses(mesh: Mesh) -> dict[str, Any]:
    with ThreadPoolExecutor(len(mesh.hosts)) as pool:
        return dict(zip(mesh.hosts, pool.map(mesh.status, mesh.hosts)))


def whole(mesh: Mesh, beta_at: str, paths: dict[str, dict[str, str]] | None = None) -> bool:
    """Every pair answers directly (TTL 64: through no gateway), every member holds beta as
    its static node with WireGuard's endpoint at `beta_at`, and every path kind is as in
    `paths` (None: nobody's path is `none` or `gateway`)."""
    if not all(t == DIRECT_TTL for t in mesh.ttls().values()):
        return False
    for host, st in statuses(mesh).items():
        if not st:
            return False
        kinds = {p["name"]: p["path"] for p in st["peers"]}
        beta = next((p for p in st["peers"] if p["name"] == "beta"), None)
        if host != "beta" and not (
            beta and beta["path"] == "static" and beta["endpoint"] == f"{beta_at}:50000"
        ):
            return False
        if kinds != (paths or {}).get(host, kinds) or {"none", "gateway"} & set(kinds.values()):
            return False
    return True


def seconds_until(cond: Callable[[], bool], t0: float, timeout: float, what: str) -> float:
    """Seconds from `t0` to the start of the first poll at which `cond` held."""
    while True:
        polled = time.monotonic()
        if cond():
            return polled - t0
        if polled - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_members_follow_a_static_node_that_moves(dyn_mesh: Mesh) -> None:
    mesh, lab = dyn_mesh, dyn_mesh.lab
    wait_for(mesh.all_ping, 20, what="every pair pings")
    wait_for(lambda: whole(mesh, "198.51.100.2"), 30, what="direct paths everywhere, beta by its name")
    paths = {h: mesh.paths(h) for h in mesh.hosts}

    t0 = time.monotonic()
    lab.set_address("beta", MOVED)
    lab.set_dns_record(NAME, MOVED)
    pinged = seconds_until(mesh.all_ping, t0, WHOLE_WITHIN, "every pair pings again after beta moved")
    done = seconds_until(lambda: whole(mesh, MOVED, paths), t0, WHOLE_WITHIN, "the mesh whole again")
    print(f"\nbeta moved to {MOVED}: every pair pings after {pinged:.1f} s, whole again after {done:.1f} s")
    assert done < WHOLE_WITHIN
    for host in mesh.hosts:
        assert "Traceback" not in mesh.log(host), host
