"""The static node's member table: which claims it accepts, endpoints, expiry, versions."""

from __future__ import annotations

import base64
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

import pytest

from wg_netmanager.core.hub import Hub
from wg_netmanager.core.messages import MsgType, NodeInfo, TableChunk, decode
from wg_netmanager.core.model import Endpoint
from wg_netmanager.core.published import KEEP_DELTAS

SUBNET = IPv4Network("10.1.1.0/24")
NOW = 1_700_000_000.0
TIMEOUT = 3.5


def key(n: int) -> str:
    return base64.b64encode(n.to_bytes(32, "big")).decode()


def node(name: str, ip: str, n: int, **kw: Any) -> NodeInfo:
    return NodeInfo(name, IPv4Address(ip), key(n), 50000, 50001, **kw)


ME = node("beta", "10.1.1.2", 2, static=True, endpoint=Endpoint("198.51.100.2", 50000))
GAMMA = node("gamma", "10.1.1.5", 5, static=True, endpoint=Endpoint("198.51.100.5", 50000))
ALICE = node("alice", "10.1.1.1", 1)


def make_hub() -> Hub:
    return Hub(ME, SUBNET, {ME.wg_ip: "beta", GAMMA.wg_ip: "gamma"}, TIMEOUT)


def joined(*infos: NodeInfo) -> Hub:
    hub = make_hub()
    for i in infos:
        assert hub.check_claim(i) is None
        hub.hello(i, NOW)
    hub.commit()
    return hub


@pytest.mark.parametrize(
    ("claim", "why"),
    [
        (node("x", "10.1.2.1", 9), "outside subnet"),
        (node("x", "8.8.8.8", 9), "outside subnet"),
        (node("x", "10.1.1.0", 9), "outside subnet"),
        (node("x", "10.1.1.255", 9), "outside subnet"),
        (node("x", "10.1.1.9", 2), "public key"),
        (node("x", "10.1.1.2", 9), "this node's address"),
        (node("beta", "10.1.1.9", 9), "this node's address"),
        (node("x", "10.1.1.5", 9), "belongs to a static node"),
        (node("gamma", "10.1.1.9", 9), "static node gamma must have wgIp 10.1.1.5"),
        (node("x", "10.1.1.1", 9), "used by a live node"),
        (node("alice", "10.1.1.9", 9), "used by a live node"),
    ],
)
def test_check_claim_rejects(claim: NodeInfo, why: str) -> None:
    hub = joined(ALICE)
    reason: Optional[str] = hub.check_claim(claim)
    assert reason is not None and why in reason


def test_check_claim_accepts_member_reannouncing_and_static_with_its_address() -> None:
    hub = joined(ALICE)
    assert hub.check_claim(ALICE) is None
    assert hub.check_claim(replace(ALICE, wg_port=51000)) is None
    assert hub.check_claim(replace(ALICE, wg_ip=IPv4Address("10.1.1.77"))) is None  # its own new address
    assert hub.check_claim(GAMMA) is None
    assert hub.check_claim(node("zed", "10.1.1.254", 9)) is None


def test_hello_replaces_endpoint_by_observed_for_non_static() -> None:
    hub = make_hub()
    claimed = replace(ALICE, endpoint=Endpoint("1.2.3.4", 1))
    hub.hello(claimed, NOW, Endpoint("203.0.113.1", 40001))
    member = hub.members[ALICE.public_key]
    assert member.info.endpoint is None  # nothing observed yet: the claim is not trusted
    assert member.admin == Endpoint("203.0.113.1", 40001)
    hub.observed(ALICE.public_key, Endpoint("203.0.113.1", 40000))
    assert member.info.endpoint == Endpoint("203.0.113.1", 40000)
    hub.hello(claimed, NOW + 1)  # a later HELLO does not undo what we observed
    assert member.info.endpoint == Endpoint("203.0.113.1", 40000)
    assert member.admin == Endpoint("203.0.113.1", 40001)  # kept when no source is given
    assert not member.info.static


def test_static_listed_without_a_name_is_known_by_its_address() -> None:
    """The original's list form: any name at the static node's wgIp, no other address."""
    hub = Hub(ME, SUBNET, {ME.wg_ip: None, GAMMA.wg_ip: None}, TIMEOUT)
    gamma = replace(GAMMA, name="whatever-it-runs-as", static=False)
    assert hub.check_claim(gamma) is None
    hub.hello(gamma, NOW)
    hub.observed(GAMMA.public_key, Endpoint("203.0.113.99", 1234))
    info = hub.members[GAMMA.public_key].info
    assert info.static and info.endpoint == GAMMA.endpoint
    assert hub.check_claim(node("x", "10.1.1.2", 9)) is not None  # still our own address


def test_hello_keeps_static_endpoint_and_marks_static() -> None:
    hub = make_hub()
    hub.hello(replace(GAMMA, static=False), NOW)
    hub.observed(GAMMA.public_key, Endpoint("203.0.113.99", 1234))
    info = hub.members[GAMMA.public_key].info
    assert info.static and info.endpoint == GAMMA.endpoint


def test_hello_cannot_make_itself_static() -> None:
    hub = make_hub()
    hub.hello(replace(ALICE, static=True), NOW)
    assert not hub.members[ALICE.public_key].info.static


def test_expire_after_member_timeout() -> None:
    hub = joined(ALICE)
    hub.hello(node("bob", "10.1.1.3", 3), NOW + 2)
    hub.commit()
    assert hub.expire(NOW + TIMEOUT) == []  # exactly at the timeout: still alive
    assert not hub.dirty
    gone = hub.expire(NOW + TIMEOUT + 0.1)
    assert [i.name for i in gone] == ["alice"]
    assert hub.dirty and list(hub.members) == [key(3)]
    assert hub.check_claim(node("x", "10.1.1.1", 9)) is None  # its address is free again


def test_leave_removes_and_unknown_leave_is_no_change() -> None:
    hub = joined(ALICE)
    hub.leave(key(99))
    assert not hub.dirty
    hub.leave(ALICE.public_key)
    assert hub.dirty and not hub.members


def test_commit_bumps_version_only_on_change() -> None:
    hub = make_hub()
    v = hub.version
    assert not hub.commit() and hub.version == v
    hub.hello(ALICE, NOW)
    assert hub.commit() and hub.version == v + 1
    hub.hello(ALICE, NOW + 1)  # same info, only last_seen moves
    assert not hub.dirty and not hub.commit() and hub.version == v + 1
    hub.observed(ALICE.public_key, None)
    hub.observed(key(99), Endpoint("203.0.113.1", 1))
    assert not hub.commit()
    hub.observed(ALICE.public_key, Endpoint("203.0.113.1", 1))
    hub.observed(ALICE.public_key, Endpoint("203.0.113.1", 1))
    hub.hello(replace(ALICE, wg_port=50010), NOW + 2)
    assert hub.commit() and hub.version == v + 2  # a batch of changes is one version
    assert not hub.commit()


def test_entries_are_me_first_then_by_name() -> None:
    hub = joined(node("zed", "10.1.1.9", 9), ALICE, node("bob", "10.1.1.3", 3))
    assert [e.name for e in hub.entries()] == ["beta", "alice", "bob", "zed"]


def test_chunk_caches_invalidate_on_commit() -> None:
    hub = joined(ALICE)
    chunks, encoded = hub.chunks(), hub.encoded_chunks()
    assert hub.chunks() is chunks and hub.encoded_chunks() is encoded
    assert all(c.version == hub.version for c in chunks)
    hub.hello(node("bob", "10.1.1.3", 3), NOW)
    assert hub.chunks() is chunks  # uncommitted changes are not published
    hub.commit()
    fresh = hub.chunks()
    assert fresh is not chunks and fresh[0].version == hub.version
    assert [e.name for c in fresh for e in c.entries] == ["beta", "alice", "bob"]
    assert hub.encoded_chunks() is not encoded and hub.encoded_chunks() != encoded


# --- updates: deltas over a version a member holds ----------------------------------------


def apply_update(hub: Hub, table: dict[str, NodeInfo], held: int) -> tuple[dict[str, NodeInfo], int]:
    """What a member holding `table` at version `held` makes of hub.encoded_update(held)."""
    chunks = [decode(t, body) for t, body in hub.encoded_update(held)]
    if not chunks:
        return table, held
    assert all(isinstance(c, TableChunk) for c in chunks)
    if chunks[0].base == 0:  # type: ignore[union-attr]
        return {e.public_key: e for c in chunks for e in c.entries}, chunks[0].version  # type: ignore[union-attr]
    assert chunks[0].base == held  # type: ignore[union-attr]
    new = dict(table)
    for c in chunks:
        for k in c.removed:  # type: ignore[union-attr]
            new.pop(k, None)
    for c in chunks:
        new.update((e.public_key, e) for e in c.entries)  # type: ignore[union-attr]
    return new, chunks[0].version  # type: ignore[union-attr]


def published(hub: Hub) -> dict[str, NodeInfo]:
    return {e.public_key: e for c in hub.chunks() for e in c.entries}


def test_a_join_is_one_small_delta_not_the_table() -> None:
    hub = joined(*(node(f"n{i}", f"10.1.1.{10 + i}", 10 + i) for i in range(60)))
    table, held = apply_update(hub, {}, 0)
    assert held == hub.version and table == published(hub) and len(hub.chunks()) > 3
    hub.hello(ALICE, NOW)
    hub.commit()
    update = hub.encoded_update(held)
    assert len(update) == 1 and update[0][0] == MsgType.TABLE_DELTA
    table, held = apply_update(hub, table, held)
    assert held == hub.version and table == published(hub)
    assert hub.encoded_update(held) == []


def test_deltas_compose_over_several_versions_with_removals() -> None:
    bob, carol = node("bob", "10.1.1.3", 3), node("carol", "10.1.1.4", 4)
    hub = joined(ALICE, bob)
    start = published(hub), hub.version
    hub.leave(bob.public_key)
    hub.commit()
    hub.hello(carol, NOW)
    hub.hello(replace(ALICE, wg_port=50010), NOW)
    hub.commit()
    hub.hello(bob, NOW)  # back again
    hub.leave(carol.public_key)
    hub.commit()
    table, held = apply_update(hub, *start)
    assert held == hub.version and table == published(hub)
    assert set(table) == {ME.public_key, ALICE.public_key, bob.public_key}
    assert table[ALICE.public_key].wg_port == 50010


def test_a_member_too_far_behind_or_ahead_gets_the_whole_table() -> None:
    hub = joined(ALICE)
    old = hub.version
    for i in range(KEEP_DELTAS + 1):
        hub.hello(node(f"n{i}", f"10.1.1.{10 + i}", 10 + i), NOW)
        hub.commit()
    for held in (old, 0, hub.version + 5):  # history gone; none held; a restarted hub's count
        chunks = [decode(t, b) for t, b in hub.encoded_update(held)]
        assert all(c.base == 0 for c in chunks)  # type: ignore[union-attr]
    assert hub.encoded_update(hub.version - 2)[0][0] == MsgType.TABLE_DELTA


def test_our_own_address_change_is_published() -> None:
    hub = joined(ALICE)
    v = hub.version
    hub.me = replace(ME, locals=(IPv4Interface("198.51.100.2/24"),))
    assert hub.dirty and hub.commit() and hub.version == v + 1
    table, _ = apply_update(hub, published(hub), v)
    assert table[ME.public_key].locals == (IPv4Interface("198.51.100.2/24"),)


def test_claims_index_follows_leaves_and_changes() -> None:
    hub = joined(ALICE)
    assert hub.check_claim(node("x", "10.1.1.1", 9)) is not None
    hub.hello(replace(ALICE, wg_ip=IPv4Address("10.1.1.7")), NOW)  # same key, new address
    assert hub.check_claim(node("x", "10.1.1.1", 9)) is None
    assert hub.check_claim(node("x", "10.1.1.7", 9)) is not None
    hub.leave(ALICE.public_key)
    assert hub.check_claim(node("alice", "10.1.1.7", 9)) is None


def test_claims_index_follows_members_and_caps_one_source() -> None:
    """Kept as members come and go (not rebuilt per HELLO, which was quadratic)."""
    hub = make_hub()
    src = Endpoint("203.0.113.5", 40000)
    infos = [node(f"n{i}", f"10.1.1.{20 + i}", 20 + i) for i in range(30)]
    for i in infos:
        hub.hello(i, NOW, src)
    hub.leave(infos[0].public_key)
    hub.hello(replace(infos[1], name="renamed"), NOW, Endpoint("203.0.113.6", 1))  # same key, new name
    hub.expire(NOW + TIMEOUT + 100)  # everyone left
    assert hub._by_ip == {} and hub._by_name == {} and not +hub._per_source
    for i in infos[:3]:
        hub.hello(i, NOW, src)
    assert hub.check_claim(node("x", "10.1.1.22", 99)) is not None  # taken by n2
    assert hub.check_claim(node("n0", "10.1.1.99", 99)) is not None  # name taken
    assert hub.check_claim(node("x", "10.1.1.99", 99), src) is None
    assert hub._per_source[src.host] == 3


def test_ipv6_observed_endpoint_is_not_published() -> None:
    """v1: one IPv6 endpoint in the table made every member drop the whole chunk."""
    hub = joined(ALICE)
    hub.observed(ALICE.public_key, Endpoint("2001:db8::1", 50000))
    assert hub.members[ALICE.public_key].info.endpoint is None and not hub.dirty


def test_a_reload_drops_a_member_whose_claim_the_new_static_nodes_contradict() -> None:
    bob = node("bob", "10.1.1.7", 7)
    hub = joined(ALICE, bob, replace(GAMMA, static=False, endpoint=None))
    assert hub.members[GAMMA.public_key].info.static
    # alice's address becomes static node dave's; gamma is no longer a static node
    hub.set_statics({ME.wg_ip: "beta", ALICE.wg_ip: "dave"})
    assert set(hub.members) == {bob.public_key, GAMMA.public_key}
    assert not hub.members[GAMMA.public_key].info.static
    assert hub.check_claim(ALICE) is not None  # and refused if it says HELLO again
    assert hub.commit()  # the table changed
