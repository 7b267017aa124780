"""The smallest change from the peers WireGuard has to the peers the core wants.

Pure: no IO, no clock. Both the UAPI backends and the kernel backend turn the returned
`PeerOp`s into their own wire format, in order; the simulator (tests/sim) applies the same
ops to its model of WireGuard.

`reconcile` diffs; `plan_peers` is what a backend runs: it also re-creates the peers whose
`PeerSpec.generation` changed, and returns the generations to pass in next time.

Ordering rule: an address is never in two peers' AllowedIPs at once. Phase 1 removes peers
and shrinks peers that lose addresses; phase 2 grows peers and adds new ones. A peer that both
loses and gains is split across the phases only when what it gains is still held by another
peer; otherwise it gets one replace in phase 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..core.model import HANDSHAKE_HOLD, Endpoint, PeerSpec
from .base import IPNetwork, PeerState

# A peer whose generation changed is kept, not re-created, when its last handshake is younger
# than HANDSHAKE_HOLD: that is the other side's initiation of this attempt getting through, and
# re-creating the peer would throw that working session away.


@dataclass(frozen=True)
class PeerOp:
    """One peer change. Fields left as None are not touched."""

    public_key: str  # base64
    remove: bool = False
    endpoint: Endpoint | None = None  # set only when it should change
    keepalive: int | None = None
    allowed_ips: tuple[IPNetwork, ...] | None = None  # replace AllowedIPs with exactly these


def _ordered(nets: Iterable[IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(sorted(nets, key=lambda n: (n.version, n.network_address.packed, n.prefixlen)))


def _check(desired: Sequence[PeerSpec]) -> None:
    seen_keys: set[str] = set()
    owner: dict[IPNetwork, str] = {}
    for spec in desired:
        if spec.public_key in seen_keys:
            raise ValueError(f"peer {spec.public_key} is wanted twice")
        seen_keys.add(spec.public_key)
        for net in spec.allowed_ips:
            if net in owner and owner[net] != spec.public_key:
                raise ValueError(f"{net} is wanted in two peers' AllowedIPs")
            owner[net] = spec.public_key


def reconcile(current: Mapping[str, PeerState], desired: Sequence[PeerSpec]) -> list[PeerOp]:
    """Ops that turn `current` (as read back) into `desired`, in a safe order.

    `PeerSpec.endpoint` None means "keep what WireGuard learned" (roaming); a set endpoint is
    written only if it differs from the current one. Raises ValueError if `desired` wants a
    peer twice or an address in two peers.
    """
    _check(desired)
    return _diff(current, desired)


def plan_peers(
    current: Mapping[str, PeerState],
    desired: Sequence[PeerSpec],
    generations: Mapping[str, int],
    now: float,
) -> tuple[list[PeerOp], dict[str, int]]:
    """`reconcile`, re-creating peers whose generation changed; and the generations applied.

    `generations` is what the previous call returned (empty at first): the
    `PeerSpec.generation` of each peer as last applied. A peer is re-created (removed, then
    added again by the same ops) when its generation differs from that, WireGuard has it, and
    its last handshake is more than HANDSHAKE_HOLD seconds before `now`. A peer seen for the
    first time is just added. The re-created peer keeps the endpoint WireGuard learned when
    the spec has none, or it would not know where the other side is.

    `now` is unix wall time (`time.time()`), not a monotonic clock: it is compared with
    `PeerState.last_handshake`, which WireGuard reports in unix time.
    """
    _check(desired)
    kept = dict(current)
    fresh: list[PeerOp] = []
    specs: list[PeerSpec] = []
    for spec in desired:
        applied = generations.get(spec.public_key)
        peer = current.get(spec.public_key)
        if (
            peer is not None
            and applied is not None
            and applied != spec.generation
            and now - peer.last_handshake > HANDSHAKE_HOLD
        ):
            fresh.append(PeerOp(spec.public_key, remove=True))
            del kept[spec.public_key]
            if spec.endpoint is None and peer.endpoint is not None:
                spec = replace(spec, endpoint=peer.endpoint)
        specs.append(spec)
    return fresh + _diff(kept, specs), {spec.public_key: spec.generation for spec in desired}


def _diff(current: Mapping[str, PeerState], desired: Sequence[PeerSpec]) -> list[PeerOp]:
    wanted = {spec.public_key: spec for spec in desired}
    held_by: dict[IPNetwork, set[str]] = {}
    for key, peer in current.items():
        for net in peer.allowed_ips:
            held_by.setdefault(net, set()).add(key)

    removals: list[PeerOp] = []
    shrinks: list[PeerOp] = []
    grows: list[PeerOp] = []

    for key in sorted(current):
        if key not in wanted:
            removals.append(PeerOp(key, remove=True))

    for key in sorted(wanted):
        spec = wanted[key]
        new = frozenset(spec.allowed_ips)
        cur = current.get(key)
        if cur is None:
            grows.append(
                PeerOp(
                    key,
                    endpoint=spec.endpoint,
                    keepalive=spec.keepalive or None,
                    allowed_ips=_ordered(new),
                )
            )
            continue
        endpoint = spec.endpoint if spec.endpoint not in (None, cur.endpoint) else None
        keepalive = spec.keepalive if spec.keepalive != cur.keepalive else None
        lost = cur.allowed_ips - new
        gained = new - cur.allowed_ips
        contested = any(held_by.get(net, set()) - {key} for net in gained)
        if lost and gained and contested:
            shrinks.append(
                PeerOp(
                    key,
                    endpoint=endpoint,
                    keepalive=keepalive,
                    allowed_ips=_ordered(cur.allowed_ips & new),
                )
            )
            grows.append(PeerOp(key, allowed_ips=_ordered(new)))
        elif lost or gained:
            op = PeerOp(key, endpoint=endpoint, keepalive=keepalive, allowed_ips=_ordered(new))
            (shrinks if lost or not contested else grows).append(op)
        elif endpoint is not None or keepalive is not None:
            shrinks.append(PeerOp(key, endpoint=endpoint, keepalive=keepalive))

    return removals + shrinks + grows
