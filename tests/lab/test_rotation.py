"""A shared-key rotation on a running seed-basic mesh, with every ordered pair pinged every
0.1 s throughout: phase 1 gives the nodes the new key (the old one still accepted) in batches,
by net.yaml and SIGHUP, with delta last as if the first run had not reached it; once no node
hears the old key any more, phase 2 drops it node by node. No agent restarts; the losses per
pair are printed, and no pair may lose more than a few pings in a row."""

from __future__ import annotations

import base64
import os
import signal
import time
from typing import Any

import pytest
from meshlab import SEED_BASIC_PATHS, Mesh, losses, pingers, wait_for

pytestmark = pytest.mark.lab

MAX_GAP = 5  # pings in a row a pair may lose (0.5 s: a loaded 2-vCPU machine)


def reload(mesh: Mesh, host: str, shared: str, previous: str | None) -> None:
    net = mesh.net_yaml()
    net["network"]["sharedKey"] = shared
    if previous:
        net["network"]["previousSharedKey"] = previous
    mesh.write_configs(host, net)
    mesh.procs[host].send_signal(signal.SIGHUP)
    wait_for(
        lambda: (mesh.status(host) or {}).get("rotating") is bool(previous),
        10,
        interval=0.2,
        what=f"{host} reloaded",
    )


def observe(mesh: Mesh, seconds: float = 11) -> None:
    """An observation window as long as a static node's member timeout (a node cut off from
    the control channel has dropped out by then), ending when every pair pings."""
    start = time.monotonic()
    wait_for(lambda: time.monotonic() - start > seconds and mesh.all_ping(), seconds + 20, 0.5, "steady")


@pytest.mark.timeout(300)
def test_rotation_keeps_every_pair_reachable(mesh_on: Any) -> None:
    mesh = mesh_on("seed-basic")
    mesh.wait_paths(SEED_BASIC_PATHS, timeout=60)
    old, new = mesh.shared_key, base64.b64encode(os.urandom(32)).decode()
    procs = pingers(mesh)
    try:
        wait_for(lambda: all(mesh.status(h) for h in mesh.hosts), 10, what="status")
        for batch in (["beta", "alpha"], ["charlie"]):  # phase 1
            for host in batch:
                reload(mesh, host, new, old)
        observe(mesh)  # delta, on the old key alone, must stay in the mesh
        reload(mesh, "delta", new, old)
        wait_for(
            lambda: all((mesh.status(h) or {}).get("onPreviousKey") == [] for h in mesh.hosts),
            30,
            interval=0.5,
            what="no node hears the old key",
        )
        for host in mesh.hosts:  # phase 2
            reload(mesh, host, new, None)
        mesh.shared_key = new
        observe(mesh)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGINT)
        outs = {pair: p.communicate(timeout=10)[0] for pair, p in procs.items()}
    table = {pair: losses(out) for pair, out in outs.items()}
    print("\npair               sent  lost  longest")
    for (a, b), (sent, lost, gap) in sorted(table.items()):
        print(f"{a:>8} -> {b:<8} {sent:5d} {lost:5d} {gap:8d}")
    assert all(sent > 100 for sent, _, _ in table.values()), table
    assert max(gap for _, _, gap in table.values()) <= MAX_GAP, table
    assert all(s["rotating"] is False for s in (mesh.status(h) or {} for h in mesh.hosts)), "not reloaded"
