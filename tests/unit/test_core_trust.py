"""The attacks of issue 10 against the real core: each fails on the v1 control channel.

Two adversaries: an outsider on the path (no shared key) and a member (holds the shared key,
say a stolen IoT box) with a key pair of its own.
"""

from __future__ import annotations

import os
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

from corekit import (
    ALICE_SRC,
    BETA,
    BETA_ADMIN,
    BETA_INFO,
    NOW,
    Fake,
    beta,
    exchange,
    ident,
    info,
    key,
    linked,
    make_node,
    names,
)

from wg_netmanager.core import messages as m
from wg_netmanager.core.hub import MAX_PER_SOURCE
from wg_netmanager.core.limits import PerSource
from wg_netmanager.core.model import Endpoint
from wg_netmanager.core.node import StaticNode
from wg_netmanager.core.wire import Codec, Identity

MALLORY_SRC = Endpoint("192.0.2.66", 40066)


def test_a_member_cannot_take_over_another_node() -> None:
    """v1: a forged LEAVE("alice") and a HELLO("alice", 10.1.1.1, mallory's key) made beta drop
    the real alice and route 10.1.1.1 to mallory."""
    hub, alice, mallory = beta(), make_node("alice", "10.1.1.1", 1), Fake(66)
    exchange(alice, hub, ALICE_SRC, BETA_ADMIN)
    assert "alice" in names(hub)
    cookie = mallory.cookie(hub, MALLORY_SRC)
    hub.datagram(NOW, mallory.to(hub, m.Leave("alice", key(1))), MALLORY_SRC)
    hub.datagram(NOW, mallory.to(hub, m.Hello(info("alice", "10.1.1.1", 1), 0, cookie)), MALLORY_SRC)
    hub.datagram(NOW, mallory.to(hub, m.Hello(info("alice", "10.1.1.1", 66), 0, cookie)), MALLORY_SRC)
    assert hub.drops["rejected"] >= 2
    assert hub.hub is not None and set(hub.hub.members) == {key(1)}
    assert hub.hub.members[key(1)].admin == ALICE_SRC
    allowed = {str(n) for p in hub.desired(NOW).peers if p.public_key == key(66) for n in p.allowed_ips}
    assert allowed == set()


def test_a_member_cannot_answer_for_a_static_node() -> None:
    """Without the KEYREQ's nonce (sent only to beta's address) nobody can answer for beta;
    and once beta answered, another key is refused while beta still answers."""
    alice, real_beta, mallory = make_node("alice", "10.1.1.1", 1), Fake(2), Fake(66)
    alice.tick(NOW)
    alice.datagram(NOW, mallory.to(alice, m.KeyResp(1, bytes(16))), BETA_ADMIN)  # guessed nonce
    assert alice.links["beta"].key is None
    linked(alice, real_beta)
    nonce = alice.links["beta"].nonce = 99  # say mallory saw a later KEYREQ on the path
    alice.datagram(NOW, mallory.to(alice, m.KeyResp(nonce, bytes(16))), BETA_ADMIN)
    assert alice.links["beta"].key == real_beta.identity.public
    impostor = replace(BETA_INFO, public_key=key(66))
    alice.datagram(NOW, mallory.to(alice, m.HelloAck(impostor, 1)), BETA_ADMIN)
    alice.datagram(NOW, mallory.to(alice, m.TableChunk(9, 0, 1, (impostor,))), BETA_ADMIN)
    assert alice.drops["rejected"] == 4
    alice.tick(NOW)
    assert set(alice.view) == {key(2)}


def test_a_pinned_static_key_refuses_every_other() -> None:
    pinned = replace(BETA, public_key=Fake(2).identity.public)
    alice, mallory = make_node("alice", "10.1.1.1", 1, statics=(pinned,)), Fake(66)
    alice.tick(NOW)
    alice.links["beta"].last_ack = -1e9  # long silent: v1 then took any key for beta
    nonce = alice.links["beta"].nonce
    alice.datagram(NOW + 10, mallory.to(alice, m.KeyResp(nonce, bytes(16))), BETA_ADMIN)
    assert alice.links["beta"].key == pinned.public_key and alice.drops["rejected"] == 1


def test_an_unproven_source_gets_no_larger_answer_than_it_sent() -> None:
    """v1: a HELLO replayed from a spoofed source made a static node send 27 datagrams
    (31,751 B) to that source. Now a HELLO whose cookie is not for its source address gets
    one COOKIE, smaller than the HELLO, and changes nothing."""
    hub, charlie = beta(), Fake(3)
    exchange(make_node("alice", "10.1.1.1", 1), hub, ALICE_SRC, BETA_ADMIN)
    cookie = charlie.cookie(hub, Endpoint("203.0.113.3", 50001))
    victim = Endpoint("198.51.100.99", 53)
    hello = charlie.to(hub, m.Hello(info("charlie", "10.1.1.3", 3), 0, cookie))
    hub.take_outgoing()
    hub.datagram(NOW, hello, victim)
    out = hub.take_outgoing()
    assert [dst for _, dst in out] == [victim] and len(out[0][0]) < len(hello)
    assert isinstance(charlie.read(out[0][0])[1], m.Cookie)
    assert hub.drops["unproven"] == 1 and key(3) not in hub.hub.members  # type: ignore[union-attr]


def test_keyreq_answers_are_no_larger_and_rate_limited() -> None:
    hub = beta()
    asker = Fake(3).codec
    answers = 0
    for i in range(200):
        req = asker.keyreq(i)  # a member can make new ones
        hub.datagram(NOW, req, MALLORY_SRC)
        for data, _ in hub.take_outgoing():
            assert len(data) <= len(req)
            answers += 1
    assert 0 < answers <= 70 and hub.drops["limited"] >= 130  # a burst of 64, then 20/s
    hub.datagram(NOW, asker.keyreq(999), ALICE_SRC)  # another source is not starved
    assert len(hub.take_outgoing()) == 1


def test_a_copy_of_a_keyreq_is_not_answered_again_from_anywhere() -> None:
    """No shared key needed to replay a KEYREQ: every copy was answered until the rate limit,
    from any (spoofed) source, and its answers filled the send buffer (bench/fuzz.py)."""
    hub = beta()
    req = Fake(3).codec.keyreq(1)
    hub.datagram(NOW, req, ALICE_SRC)
    assert len(hub.take_outgoing()) == 1
    for src in (ALICE_SRC, MALLORY_SRC):
        hub.datagram(NOW, req, src)
    assert hub.take_outgoing() == [] and hub.drops["replayed"] == 2


def test_a_keyreq_with_its_cookie_is_not_starved_by_a_flood_from_elsewhere() -> None:
    hub, alice = beta(), Fake(1)
    cookie = alice.cookie(hub, ALICE_SRC)
    flood = Fake(3).codec
    for i in range(3000):  # many spoofed sources spend the limit for all
        hub.datagram(NOW, flood.keyreq(i), Endpoint(f"192.0.2.{i % 250}", 1000 + i))
    hub.take_outgoing()
    hub.datagram(NOW, alice.codec.keyreq(8), ALICE_SRC)
    assert hub.take_outgoing() == []  # without a cookie: limited
    hub.datagram(NOW, alice.codec.keyreq(9, cookie=cookie), ALICE_SRC)
    assert len(hub.take_outgoing()) == 1


def test_a_sealed_message_of_type_0_is_no_keyreq() -> None:
    """Type 0 names a KEYREQ: sealed, it was taken for one, answered with a KEY_RESP larger
    than it, or (with a long body) made the core raise (bench/fuzz.py)."""
    hub, mallory = beta(), Fake(66)
    for size in (10, 600):
        data = mallory.codec.seal(0, os.urandom(size), hub.codec.identity.public, hub.codec.epoch)
        hub.datagram(NOW, data, MALLORY_SRC)
    assert hub.take_outgoing() == [] and hub.drops["malformed"] == 2


def test_new_identities_from_one_source_are_rate_limited() -> None:
    """Each new sender key costs a Diffie-Hellman: one address cannot make us do thousands."""
    alice = make_node("alice", "10.1.1.1", 1)
    pub, epoch = alice.codec.identity.public, alice.codec.epoch
    shared = bytes(range(32))
    for _ in range(400):
        fake = Codec(shared, Identity(os.urandom(32)), 5)
        alice.datagram(NOW, fake.seal(m.MsgType.PROBE, b"{}", pub, epoch), MALLORY_SRC)
    assert alice.drops["limited"] >= 260 and alice.drops["malformed"] <= 140  # a burst of 128


def test_one_source_cannot_fill_the_table() -> None:
    hub = beta()
    unlimited = PerSource(1e9, 1e9, 1e9, 1e9)
    assert hub.serving is not None
    hub.serving.keyreqs = hub.new_keys = unlimited  # not the limits under test
    for i in range(MAX_PER_SOURCE + 5):
        member = Fake(0, identity=Identity(os.urandom(32)))
        member.hello(
            hub, m.NodeInfo(f"n{i}", IPv4Address(f"10.1.1.{10 + i}"), member.key, 50000, 50001), MALLORY_SRC
        )
    assert hub.hub is not None and len(hub.hub.members) == MAX_PER_SOURCE
    assert hub.drops["rejected"] == 5


def test_nodes_whose_clocks_are_hours_apart_still_talk() -> None:
    """v1 refused datagrams more than 120 s off the receiver's wall clock; v2 needs none."""
    hub, alice = beta(), make_node("alice", "10.1.1.1", 1)
    for i in range(4):
        alice.tick(NOW + i)
        for data, dst in alice.take_outgoing():
            if dst == BETA_ADMIN:
                hub.datagram(NOW + 36000 + i, data, ALICE_SRC)  # beta's clock is 10 h ahead
        for data, dst in hub.take_outgoing():
            if dst == ALICE_SRC:
                alice.datagram(NOW + i, data, BETA_ADMIN)
    assert "alice" in names(hub, NOW + 36004) and "beta" in names(alice, NOW + 4)
    assert sum(hub.drops.values()) == sum(alice.drops.values()) == 0


def test_receivers_apply_the_static_nodes_checks_entry_by_entry() -> None:
    """v1: network/broadcast addresses and a static node's address under another key were
    taken from a table (pushing the real static node out of the view), advertised local
    addresses were not checked, and an older full table rolled the view back."""
    echo = StaticNode(
        "echo", IPv4Address("10.1.1.5"), "198.51.100.5", 50000, 50001, public_key=ident(5).public
    )
    alice, fake_beta = make_node("alice", "10.1.1.1", 1, statics=(BETA, echo)), Fake(2)
    linked(alice, fake_beta)
    bad = (
        "127.0.0.1/8",
        "255.255.255.255/32",
        "10.1.1.50/24",
        "224.0.0.1/4",
        "192.168.7.255/24",
        "0.0.0.0/0",
    )
    good = (IPv4Interface("192.168.7.9/24"), IPv4Interface("198.51.100.77/32"))
    entries = (
        BETA_INFO,
        info("echo", "10.1.1.5", 66, static=True),  # echo's address, mallory's key
        info("net", "10.1.1.0", 20),
        info("bcast", "10.1.1.255", 21),
        info("dave", "10.1.1.11", 11, locals=(*(IPv4Interface(a) for a in bad), *good)),
    )
    alice.datagram(NOW, fake_beta.to(alice, m.TableChunk(5, 0, 1, entries)), BETA_ADMIN)
    alice.tick(NOW)
    assert {i.name for i in alice.view.values()} == {"beta", "dave"}
    assert alice.view[key(11)].locals == good
    older = m.TableChunk(4, 0, 1, (BETA_INFO,))  # late: dave would vanish
    alice.datagram(NOW, fake_beta.to(alice, older), BETA_ADMIN)
    alice.tick(NOW)
    assert key(11) in alice.view and alice.links["beta"].version == 5
