"""Driving the direct paths of a node: what `Node.tick` does for its peers.

Pure: `Paths` holds the `DirectPath`s (core/paths.py) of the non-static nodes in view and
drives, on each tick, only those that need it: a path whose counters changed, whose peer or
our local addresses changed, whose PROBE was answered, or whose own deadline
(`DirectPath.next_deadline`) has come. The others would do nothing if driven, so a settled
node's tick costs nothing per peer, and `next_deadline` is the earliest of a heap. It
returns the PROBEs to send and whether anything WireGuard sees changed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from typing import Optional

from .messages import NodeInfo
from .model import Endpoint, PeerStats
from .paths import DirectPath, State, Timing
from .view import follow_view

log = logging.getLogger(__name__)


@dataclass
class Step:
    probes: list[tuple[Endpoint, NodeInfo, int]] = field(default_factory=list)  # to, peer, nonce
    changed: bool = False  # a path's state, kind, endpoint or generation: desired() differs


class Paths:
    """The direct paths, by public key (`by_key`, read by desired.py and the node), and
    which of them the next `drive` must look at."""

    def __init__(self, timing: Timing, own_key: str = "") -> None:
        self.timing = timing
        self.own_key = own_key  # which side of each pair yields (paths.py rule 2c)
        self.by_key: dict[str, DirectPath] = {}
        self._touched: set[str] = set()
        self._everything = True  # the next drive looks at every node in view
        self._due: list[tuple[float, int, str]] = []  # (deadline, seq, key); stale entries skipped
        self._deadline: dict[str, float] = {}  # each path's deadline as pushed
        self._seq = itertools.count()
        self._probing: set[str] = set()
        self.driven = 0  # paths driven so far (each drive counts the ones it looked at)

    @property
    def probing(self) -> int:
        """Paths in the PROBING state after the last drive."""
        return len(self._probing)

    def touch(self, key: str) -> None:
        """Something the path to `key` depends on changed: its counters, its peer, a PROBE_ACK."""
        self._touched.add(key)

    def counters(self, old: Mapping[str, PeerStats], new: Mapping[str, PeerStats]) -> None:
        """WireGuard's counters went from `old` to `new`: a handshake or traffic may prove
        or kill a path."""
        for key, st in new.items():
            if old.get(key) != st:
                self._touched.add(key)
        self._touched.update(old.keys() - new.keys())

    def restart_all(self) -> None:
        """We moved: every path starts over (paths.py rule 5)."""
        for path in self.by_key.values():
            path.restart()
        self._everything = True

    def touch_all(self) -> None:
        """Our local addresses changed: every path depends on them."""
        self._everything = True

    def drop(self, key: str) -> None:
        self.by_key.pop(key, None)
        self._deadline.pop(key, None)
        self._probing.discard(key)

    def follow(self, old: Mapping[str, NodeInfo], new: dict[str, NodeInfo]) -> None:
        """The view changed from `old` to `new`: paths of nodes gone are dropped, those of
        nodes that changed are started over (view.follow_view) and looked at."""
        for key in [k for k in self.by_key if k not in new]:
            self.drop(key)
        follow_view(self.by_key, new)
        for key, info in new.items():
            seen = old.get(key)
            if seen is not info and seen != info:
                self._touched.add(key)

    def next_deadline(self, now: float) -> float:
        """When the next drive has something to do; `now` if something was touched."""
        if self._touched or self._everything:
            return now
        while self._due and self._deadline.get(self._due[0][2]) != self._due[0][0]:
            heapq.heappop(self._due)  # superseded, or its path is gone
        return self._due[0][0] if self._due else math.inf

    def _keys_due(self, view: Mapping[str, NodeInfo], now: float) -> set[str]:
        keys = set(view) if self._everything else self._touched
        self._touched, self._everything = set(), False
        while self._due and self._due[0][0] <= now:
            deadline, _, key = heapq.heappop(self._due)
            if self._deadline.get(key) == deadline:
                del self._deadline[key]
                keys.add(key)
        return keys

    def drive(
        self,
        view: Mapping[str, NodeInfo],
        stats: Mapping[str, PeerStats],
        mine: list[IPv4Interface],
        rng: random.Random,
        now: float,
        allowed: Optional[Callable[[NodeInfo], bool]] = None,
    ) -> Step:
        """`allowed`: whether a path to a node may be tried now (mobile.may_probe); a path it
        does not allow goes back to idle (paths.py rule 5b)."""
        step = Step()
        for key in sorted(self._keys_due(view, now)):  # sorted: the same nonces every run
            info = view.get(key)
            if info is None or info.static:
                continue  # static nodes are reached on their configured endpoints
            path = self.by_key.get(key)
            if path is None:
                path = self.by_key[key] = DirectPath(info, self.timing, yields=self.own_key > key)
            self.driven += 1
            may = allowed is None or allowed(info)
            step.changed |= _drive_one(path, info, stats.get(key), mine, step, rng, now, may)
            if path.state == State.PROBING:
                self._probing.add(key)
            else:
                self._probing.discard(key)
            deadline = path.next_deadline()
            if self._deadline.get(key) != deadline:
                self._deadline[key] = deadline
                if deadline < math.inf:
                    heapq.heappush(self._due, (deadline, next(self._seq), key))
        return step


def _drive_one(
    path: DirectPath,
    info: NodeInfo,
    stats: Optional[PeerStats],
    mine: list[IPv4Interface],
    step: Step,
    rng: random.Random,
    now: float,
    may: bool = True,
) -> bool:
    """One path one step; True if what WireGuard sees of it changed."""
    before = path.state
    shape = (path.state, path.kind, path.endpoint, path.generation, path.holding)
    path.mine = mine
    path.update(now, stats)
    path.allowed = may
    if not may:
        if path.state != State.IDLE:
            path.quiet()
            log.info("path to %s: idle (no traffic)", info.name)
    elif path.wants_retry(now):
        path.start(now, rng.getrandbits(48), stats, mine)
        log.info(
            "path to %s: probing (WireGuard endpoint %s, local addresses %s)",
            info.name,
            path.endpoint,
            ", ".join(t.host for t in path.probe_targets) or "none",
        )
    elif path.state != before:
        if path.is_up and stats is not None:
            log.info("path to %s: %s via %s", info.name, path.kind.value, stats.endpoint)
        else:
            log.info("path to %s: no direct path, next try in %.0fs", info.name, path.retry_delay)
    probes = path.due_probes(now)
    if probes and info.epoch:  # its run is in the table (0: not yet)
        step.probes += [(dst, info, path.nonce) for dst in probes]
    return shape != (path.state, path.kind, path.endpoint, path.generation, path.holding)
