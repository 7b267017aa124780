"""A static node restarted on a running mesh (an upgrade, a changed option), with every
ordered pair pinged every 0.1 s throughout (hard-nat-2gw: alpha, charlie and delta are behind
symmetric NATs, so their pairs go through a gateway; beta and echo are the two gateways).

beta stops with SIGTERM and starts again. What it tells its members as it stops lets them
route through echo at once and ask for beta's next run every heartbeat; once beta's new run
answers, each member makes its WireGuard peer for beta again, so the handshake with the new
run starts at once instead of when WireGuard gives up on the old session (15 s). The losses
per pair are printed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from figures import figure
from meshlab import loss_table, pingers, wait_for

pytestmark = pytest.mark.lab

FIVE = ["alpha", "beta", "charlie", "delta", "echo"]
# Pings in a row a pair without beta may lose while beta restarts (1.5 s): as beta says LEAVE
# they move to echo at once; once beta is back each end moves back to it as it finds beta's new
# run, the two ends up to a heartbeat apart (and a reply through the other gateway is dropped
# by WireGuard's source check meanwhile). Before beta said LEAVE: about 10 s (90-106). Quiet
# runs lost 3-9 in a row; a CI run on 2 loaded vCPUs 29: the bound is 4 s.
OTHER_GAP = 40
# Pings in a row to or from beta, on top of the time it is down (quiet runs: 12-13 in all;
# CI, loaded: 32 with beta down 1.5 s; before the fix 143-145).
BETA_GAP = 40


def window(mesh: Any, seconds: float) -> None:
    """At least `seconds`, ending when every pair pings."""
    start = time.monotonic()
    wait_for(lambda: time.monotonic() - start > seconds and mesh.all_ping(), seconds + 60, 0.5, "steady")


@pytest.mark.timeout(300)
def test_a_restarted_static_node_costs_the_others_nothing_and_is_back_at_once(mesh_on: Any) -> None:
    mesh = mesh_on("hard-nat-2gw", list(FIVE))
    wait_for(mesh.all_ping, 60, 0.5, "mesh of five")
    window(mesh, 12)  # settled: past a member timeout
    procs = pingers(mesh)
    try:
        window(mesh, 3)  # the pingers' run before the restart
        stopped = time.monotonic()
        mesh.stop("beta")
        mesh.start("beta")
        mesh.wait_started()
        down = time.monotonic() - stopped
        wait_for(mesh.all_ping, 60, 0.2, "every pair again")
        back = time.monotonic() - stopped
        window(mesh, 3)
    finally:
        table = loss_table(procs)
    print(f"beta down (stop to status socket) {down:.1f} s; every pair again after {back:.1f} s")
    others = {pair: v for pair, v in table.items() if "beta" not in pair}
    with_beta = {pair: v for pair, v in table.items() if "beta" in pair}
    case = "static node beta stopped (SIGTERM) and started again (hard-nat-2gw)"
    figure(case, "beta down", down)
    figure(case, "every pair answers", back)
    figure(case, "most pings in a row, pairs without beta", max(g for _, _, g in others.values()), "pings")
    figure(case, "most pings in a row, beta's pairs", max(g for _, _, g in with_beta.values()), "pings")
    assert all(gap <= OTHER_GAP for _, _, gap in others.values()), others
    assert all(gap <= BETA_GAP + down * 10 for _, _, gap in with_beta.values()), (down, with_beta)
