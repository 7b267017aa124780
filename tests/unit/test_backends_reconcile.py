"""reconcile(): the smallest, safely ordered change from current peers to desired peers."""

from __future__ import annotations

from ipaddress import IPv4Network, ip_network

import pytest

from wg_netmanager.backends.base import PeerState
from wg_netmanager.backends.reconcile import PeerOp, reconcile
from wg_netmanager.core.model import Endpoint, PeerSpec

A, B, C, D = (f"{c * 43}=" for c in "ABCD")  # 44-char base64 look-alikes; reconcile never decodes


def nets(*texts: str) -> tuple[IPv4Network, ...]:
    return tuple(IPv4Network(t) for t in texts)


def cur(key: str, *ips: str, endpoint: Endpoint | None = None, keepalive: int = 0) -> PeerState:
    return PeerState(
        public_key=key,
        endpoint=endpoint,
        allowed_ips=frozenset(nets(*ips)),
        keepalive=keepalive,
        last_handshake=1.0,
        rx_bytes=5,
    )


def spec(key: str, *ips: str, endpoint: Endpoint | None = None, keepalive: int = 0) -> PeerSpec:
    return PeerSpec(
        public_key=key,
        endpoint=endpoint,
        allowed_ips=nets(*ips),
        keepalive=keepalive,
    )


def by_key(*peers: PeerState) -> dict[str, PeerState]:
    return {p.public_key: p for p in peers}


def simulate(current: dict[str, PeerState], ops: list[PeerOp]) -> dict[str, frozenset]:
    """Apply ops like WireGuard does, asserting that no address is ever in two peers."""
    state = {k: set(p.allowed_ips) for k, p in current.items()}
    for op in ops:
        if op.remove:
            state.pop(op.public_key)
        else:
            state.setdefault(op.public_key, set())
            if op.allowed_ips is not None:
                state[op.public_key] = set(op.allowed_ips)
        owners: dict[object, str] = {}
        for key, ips in state.items():
            for net in ips:
                assert net not in owners, f"{net} in {owners[net]} and {key} after {op}"
                owners[net] = key
    return {k: frozenset(v) for k, v in state.items()}


def test_nothing_to_do():
    current = by_key(cur(A, "10.1.1.2/32", endpoint=Endpoint("192.0.2.2", 51820), keepalive=25))
    desired = [spec(A, "10.1.1.2/32", endpoint=Endpoint("192.0.2.2", 51820), keepalive=25)]
    assert reconcile(current, desired) == []


def test_empty_to_empty():
    assert reconcile({}, []) == []


def test_add_new_peer_with_everything():
    ops = reconcile({}, [spec(A, "10.1.1.2/32", endpoint=Endpoint("192.0.2.2", 51820), keepalive=25)])
    assert ops == [
        PeerOp(
            A,
            endpoint=Endpoint("192.0.2.2", 51820),
            keepalive=25,
            allowed_ips=nets("10.1.1.2/32"),
        )
    ]


def test_new_peer_without_endpoint_or_keepalive_sets_neither():
    (op,) = reconcile({}, [spec(A, "10.1.1.2/32")])
    assert op.endpoint is None and op.keepalive is None
    assert op.allowed_ips == nets("10.1.1.2/32")


def test_new_peer_without_allowed_ips_still_added():
    assert reconcile({}, [spec(A)]) == [PeerOp(A, allowed_ips=())]


def test_remove_peer_not_wanted():
    current = by_key(cur(A, "10.1.1.2/32"), cur(B, "10.1.1.3/32"))
    assert reconcile(current, [spec(A, "10.1.1.2/32")]) == [PeerOp(B, remove=True)]


def test_none_endpoint_keeps_learned_endpoint():
    # The peer roamed: WireGuard learned 203.0.113.9:4000; the core does not care.
    current = by_key(cur(A, "10.1.1.2/32", endpoint=Endpoint("203.0.113.9", 4000)))
    assert reconcile(current, [spec(A, "10.1.1.2/32")]) == []


def test_changed_endpoint_is_set_alone():
    current = by_key(cur(A, "10.1.1.2/32", endpoint=Endpoint("203.0.113.9", 4000)))
    ops = reconcile(current, [spec(A, "10.1.1.2/32", endpoint=Endpoint("192.0.2.2", 51820))])
    assert ops == [PeerOp(A, endpoint=Endpoint("192.0.2.2", 51820))]


def test_same_endpoint_not_rewritten():
    current = by_key(cur(A, "10.1.1.2/32", endpoint=Endpoint("192.0.2.2", 51820)))
    assert reconcile(current, [spec(A, "10.1.1.2/32", endpoint=Endpoint("192.0.2.2", 51820))]) == []


def test_keepalive_change_only():
    current = by_key(cur(A, "10.1.1.2/32", keepalive=25))
    assert reconcile(current, [spec(A, "10.1.1.2/32", keepalive=0)]) == [PeerOp(A, keepalive=0)]


def test_allowed_ips_order_does_not_matter():
    current = by_key(cur(A, "10.1.1.5/32", "10.1.1.2/32"))
    assert reconcile(current, [spec(A, "10.1.1.2/32", "10.1.1.5/32")]) == []


def test_move_address_from_gateway_peer_to_direct_peer():
    """10.1.1.4 was reached through gateway B; now there is a direct tunnel to D."""
    current = by_key(
        cur(B, "10.1.1.2/32", "10.1.1.4/32", endpoint=Endpoint("192.0.2.2", 51820)),
    )
    desired = [
        spec(B, "10.1.1.2/32"),
        spec(D, "10.1.1.4/32", endpoint=Endpoint("198.51.100.4", 50000), keepalive=25),
    ]
    ops = reconcile(current, desired)
    assert ops == [
        PeerOp(B, allowed_ips=nets("10.1.1.2/32")),
        PeerOp(
            D,
            endpoint=Endpoint("198.51.100.4", 50000),
            keepalive=25,
            allowed_ips=nets("10.1.1.4/32"),
        ),
    ]
    assert simulate(current, ops) == {B: frozenset(nets("10.1.1.2/32")), D: frozenset(nets("10.1.1.4/32"))}


def test_move_address_between_existing_peers_shrinks_first_whatever_the_key_order():
    # D (sorted last) loses 10.1.1.4; A (sorted first) gains it: A must still come after D.
    current = by_key(cur(A, "10.1.1.2/32"), cur(D, "10.1.1.3/32", "10.1.1.4/32"))
    desired = [spec(A, "10.1.1.2/32", "10.1.1.4/32"), spec(D, "10.1.1.3/32")]
    ops = reconcile(current, desired)
    assert ops == [
        PeerOp(D, allowed_ips=nets("10.1.1.3/32")),
        PeerOp(A, allowed_ips=nets("10.1.1.2/32", "10.1.1.4/32")),
    ]
    simulate(current, ops)


def test_swap_addresses_splits_both_peers_across_phases():
    current = by_key(cur(A, "10.1.1.2/32", "10.1.1.8/32"), cur(B, "10.1.1.3/32", "10.1.1.9/32"))
    desired = [spec(A, "10.1.1.2/32", "10.1.1.9/32"), spec(B, "10.1.1.3/32", "10.1.1.8/32")]
    ops = reconcile(current, desired)
    assert ops == [
        PeerOp(A, allowed_ips=nets("10.1.1.2/32")),
        PeerOp(B, allowed_ips=nets("10.1.1.3/32")),
        PeerOp(A, allowed_ips=nets("10.1.1.2/32", "10.1.1.9/32")),
        PeerOp(B, allowed_ips=nets("10.1.1.3/32", "10.1.1.8/32")),
    ]
    final = simulate(current, ops)
    assert final[A] == frozenset(nets("10.1.1.2/32", "10.1.1.9/32"))


def test_lose_and_gain_uncontested_is_one_op():
    current = by_key(cur(A, "10.1.1.2/32", "10.1.1.8/32"))
    ops = reconcile(current, [spec(A, "10.1.1.2/32", "10.1.1.9/32")])
    assert ops == [PeerOp(A, allowed_ips=nets("10.1.1.2/32", "10.1.1.9/32"))]


def test_address_from_removed_peer_goes_to_new_peer_after_removal():
    current = by_key(cur(B, "10.1.1.4/32"))
    ops = reconcile(current, [spec(C, "10.1.1.4/32")])
    assert ops == [PeerOp(B, remove=True), PeerOp(C, allowed_ips=nets("10.1.1.4/32"))]
    simulate(current, ops)


def test_endpoint_change_travels_with_the_first_op_of_a_split_peer():
    current = by_key(
        cur(A, "10.1.1.2/32", "10.1.1.8/32", endpoint=Endpoint("192.0.2.2", 1)),
        cur(B, "10.1.1.9/32"),
    )
    desired = [
        spec(A, "10.1.1.2/32", "10.1.1.9/32", endpoint=Endpoint("192.0.2.2", 2)),
        spec(B, "10.1.1.8/32"),
    ]
    ops = reconcile(current, desired)
    assert ops[0] == PeerOp(A, endpoint=Endpoint("192.0.2.2", 2), allowed_ips=nets("10.1.1.2/32"))
    assert all(op.endpoint is None for op in ops[1:])
    simulate(current, ops)


def test_ipv6_allowed_ips_of_adopted_interface_are_replaced():
    current = {
        A: PeerState(A, allowed_ips=frozenset({ip_network("fd00::2/128"), IPv4Network("10.1.1.2/32")}))
    }
    assert reconcile(current, [spec(A, "10.1.1.2/32")]) == [PeerOp(A, allowed_ips=nets("10.1.1.2/32"))]


def test_big_reshuffle_never_double_assigns():
    keys = [f"{chr(ord('A') + i) * 43}=" for i in range(8)]
    current = by_key(*(cur(k, f"10.1.1.{i + 1}/32", f"10.1.2.{i}/32") for i, k in enumerate(keys)))
    # Everyone's second address rotates to the next peer; the first peer is removed.
    desired = [spec(k, f"10.1.1.{i + 1}/32", f"10.1.2.{(i + 1) % 8}/32") for i, k in enumerate(keys) if i]
    desired.append(spec(f"{'Z' * 43}=", "10.1.2.1/32"))  # a new peer gets the one left over
    ops = reconcile(current, desired)
    final = simulate(current, ops)
    assert final == {d.public_key: frozenset(d.allowed_ips) for d in desired}
    assert ops[0] == PeerOp(keys[0], remove=True)


def test_duplicate_address_in_desired_is_refused():
    with pytest.raises(ValueError, match="two peers"):
        reconcile({}, [spec(A, "10.1.1.4/32"), spec(B, "10.1.1.4/32")])


def test_duplicate_peer_in_desired_is_refused():
    with pytest.raises(ValueError, match="twice"):
        reconcile({}, [spec(A, "10.1.1.4/32"), spec(A, "10.1.1.5/32")])
