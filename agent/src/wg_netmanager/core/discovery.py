"""Driving every direct path of a node one step: what `Node.tick` does for its peers.

Pure: it updates the `DirectPath`s (core/paths.py) of the non-static nodes in view from the
counters WireGuard reported, starts the ones due for an attempt, and returns the PROBEs to
send and whether anything WireGuard sees changed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Interface

from .messages import NodeInfo
from .model import Endpoint, PeerStats
from .paths import DirectPath, State, Timing

log = logging.getLogger(__name__)


@dataclass
class Step:
    probes: list[tuple[Endpoint, NodeInfo, int]] = field(default_factory=list)  # to, peer, nonce
    changed: bool = False  # a path's state, kind, endpoint or generation: desired() differs
    probing: int = 0  # paths in the PROBING state afterwards


def drive(
    paths: dict[str, DirectPath],
    view: Mapping[str, NodeInfo],
    stats: Mapping[str, PeerStats],
    mine: list[IPv4Interface],
    timing: Timing,
    rng: random.Random,
    now: float,
) -> Step:
    step = Step()
    for key, info in view.items():
        if info.static:
            continue  # static nodes are reached on their configured endpoints
        path = paths.get(key)
        if path is None:
            path = paths[key] = DirectPath(info, timing)
        before = path.state
        shape = (path.state, path.kind, path.endpoint, path.generation)
        path.mine = mine
        path.update(now, stats.get(key))
        if path.wants_retry(now):
            path.start(now, rng.getrandbits(48), stats.get(key), mine)
            log.info(
                "path to %s: probing (WireGuard endpoint %s, local addresses %s)",
                info.name,
                path.endpoint,
                ", ".join(t.host for t in path.probe_targets) or "none",
            )
        elif path.state != before:
            if path.is_up:
                log.info("path to %s: %s via %s", info.name, path.kind.value, stats[key].endpoint)
            else:
                log.info("path to %s: no direct path, next try in %.0fs", info.name, path.retry_delay)
        probes = path.due_probes(now)
        if probes and info.epoch:  # its run is in the table (0: not yet)
            step.probes += [(dst, info, path.nonce) for dst in probes]
        step.changed |= shape != (path.state, path.kind, path.endpoint, path.generation)
        step.probing += path.state == State.PROBING
    return step
