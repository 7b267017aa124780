"""Static nodes added and removed by a reload (SIGHUP) on a running mesh, with every ordered
pair pinged every 0.1 s throughout (hard-nat-2gw: alpha, charlie and delta are behind
symmetric NATs, so their pairs go through a gateway). echo starts as a second static node
and the others take it by SIGHUP; later they drop it again by SIGHUP and echo stops. No agent
but echo restarts; the losses per pair are printed: no more than a few pings in a row (in
quiet runs none) while echo is added, and no more than a few while it goes."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from meshlab import Mesh, loss_table, pingers, wait_for

pytestmark = pytest.mark.lab

MAX_GAP = 5  # pings in a row a pair may lose while a gateway goes (0.5 s)


def reload(mesh: Mesh, hosts: list[str], net: dict[str, Any]) -> None:
    for host in hosts:
        mesh.write_configs(host, net)
        mesh.procs[host].send_signal(signal.SIGHUP)


def static_nodes(mesh: Mesh, host: str) -> dict[str, Any]:
    return (mesh.status(host) or {}).get("staticNodes", {})


def steady(mesh: Mesh, seconds: float = 11) -> None:
    """A window as long as a static node's member timeout, ending when every pair pings."""
    start = time.monotonic()
    wait_for(lambda: time.monotonic() - start > seconds and mesh.all_ping(), seconds + 30, 0.5, "steady")


@pytest.mark.timeout(300)
def test_static_nodes_come_and_go_by_reload_without_losing_a_ping(mesh_on: Any) -> None:
    four = ["alpha", "beta", "charlie", "delta"]
    mesh = mesh_on("hard-nat-2gw", list(four))  # net.yaml lists beta alone
    wait_for(mesh.all_ping, 60, 0.5, "mesh of four")
    pids = {h: mesh.procs[h].pid for h in four}
    procs = pingers(mesh)
    try:
        steady(mesh, 3)
        mesh.hosts.append("echo")
        mesh.vars["echo"] = mesh.lab.topology.nodes["echo"].vars
        with_echo = mesh.net_yaml()
        assert set(with_echo["peers"]) == {"beta", "echo"}
        mesh.start("echo", net=with_echo)
        reload(mesh, four, with_echo)
        wait_for(
            lambda: all(static_nodes(mesh, h).get("echo", {}).get("up") for h in four),
            20,
            0.5,
            "every node talks to echo",
        )
        steady(mesh)
        added = loss_table(procs)
        procs = pingers(mesh)  # now with echo's pairs too
        steady(mesh, 3)
        mesh.hosts.remove("echo")
        without = mesh.net_yaml()
        reload(mesh, four, without)
        wait_for(lambda: all("echo" not in static_nodes(mesh, h) for h in four), 20, 0.5, "echo dropped")
        mesh.stop("echo")
        steady(mesh)
    finally:
        removed = loss_table(procs)
    assert {h: mesh.procs[h].pid for h in four} == pids  # reloaded, never restarted
    assert all(mesh.procs[h].poll() is None for h in four)
    assert all(sent > 100 for sent, _, _ in added.values()), added
    # Usually none is lost while echo is added; a CI run on 2 loaded vCPUs once lost 4 in a row
    # on the LAN pair charlie-delta (not through any static node), so the bound is MAX_GAP.
    assert max(gap for _, _, gap in added.values()) <= MAX_GAP, added
    kept = {pair: v for pair, v in removed.items() if "echo" not in pair}
    assert max(gap for _, _, gap in kept.values()) <= MAX_GAP, kept
    for h in four:
        assert "reload: static nodes now beta, echo" in mesh.log(h)
        assert "reload: static nodes now beta\n" in mesh.log(h)
