"""Two simulated hours of churn (tests/sim/soak.py): every event heals within a bound, no
pair is lost while nothing happens, no address is ever in two peers, and what the nodes hold
stays within what the mesh's size explains. `bench/soak.py` runs days."""

from __future__ import annotations

import soak


def test_two_hours_of_churn_heal_every_time() -> None:
    report = soak.run(2.0, seed=1)
    print(soak.table(report))
    assert report.failures == []
    assert sum(report.events.values()) >= 30
    assert set(report.events) >= {"join", "leave", "crash", "roam", "static down", "static back"}
    assert report.worst[0] <= 9.0, report.worst  # the hub timeout (5.5 s), a handshake and a HELLO
    hosts = len(soak.mesh(1).hosts)
    for hour in report.sizes:
        for what in ("view", "paths", "stats", "wireguard peers", "members"):
            assert hour.get(what, 0) < hosts, (what, hour)
        assert hour["cipher peers"] <= 2 * hosts  # a restarted node's earlier run is kept a while
        assert hour["deltas"] <= 16  # published.KEEP_DELTAS
