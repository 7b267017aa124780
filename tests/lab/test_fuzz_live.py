"""Hostile datagrams at a live static node, bounded: bench/fuzz.py's phases with 5,000 of them
against beta in seed-basic. Nothing hostile is accepted, no agent logs a traceback or dies, and
every pair pings afterwards. The figures for 1,000,000 come from `bench/fuzz.py`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fuzz  # noqa: E402

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]


def test_live_agent_drops_every_hostile_datagram(mesh_on: Any) -> None:
    start = time.monotonic()
    mesh = mesh_on("seed-basic", cls=fuzz.FuzzMesh)  # its teardown stops the capture too
    rep = fuzz.run(mesh, count=5000, rate=5000.0, senders=1, seconds=20.0, seed=1, min_captured=5)
    accepted = {f"{r.cls} {r.kind}": (r.accepted, dict(r.dropped)) for r in rep.rows if r.accepted}
    assert accepted == {}, f"accepted (sent - dropped - overflow), with what was dropped: {accepted}"
    assert rep.exceptions == []
    assert rep.alive
    assert rep.whole_after is not None, "the mesh was not whole 30 s after the fuzzing"
    assert sum(r.sent for r in rep.rows) >= 4000, [(r.kind, r.sent, dict(r.errors)) for r in rep.rows]
    assert time.monotonic() - start < 60
