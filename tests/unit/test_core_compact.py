"""HELLOs and their answers leave out the NodeInfo the other side already holds (by digest):
half the idle control traffic, and nothing a forger or a forgetful static node can use."""

from __future__ import annotations

from ipaddress import IPv4Interface

from corekit import ALICE_SRC, BETA_ADMIN, BETA_INFO, NOW, Fake, beta, info, make_node

from wg_netmanager.core import messages as m
from wg_netmanager.core.node import Node

ALICE = info("alice", "10.1.1.1", 1)


def hellos(node: Node, fake: Fake, now: float) -> list[m.Hello]:
    node.tick(now)
    found = []
    for data, dst in node.take_outgoing():
        if dst == BETA_ADMIN and data[5] == 1:
            _, msg = fake.read(data)
            if isinstance(msg, m.Hello):
                found.append(msg)
    return found


def test_a_member_repeats_its_node_info_only_until_the_static_node_holds_it() -> None:
    alice, fake = make_node("alice", "10.1.1.1", 1), Fake(2)
    fake.answer_keyreq(alice)
    [first] = hellos(alice, fake, NOW)  # at once, on the KEY_RESP
    assert first.node is not None and first.digest == m.digest(first.node)
    alice.datagram(NOW + 1, fake.to(alice, m.HelloAck(None, 0, first.digest)), BETA_ADMIN)
    assert alice.drops["rejected"] == 1  # it holds no table or answer of beta yet: not taken
    assert alice.links["beta"].info is None
    alice.datagram(NOW + 1, fake.to(alice, m.HelloAck(BETA_INFO, 3, first.digest)), BETA_ADMIN)
    [second] = hellos(alice, fake, NOW + 2)
    assert second.node is None and second.digest == first.digest
    alice.set_locals([IPv4Interface("192.168.7.7/24")])  # roamed: all of it again, at once
    [third] = hellos(alice, fake, NOW + 2.1)
    assert third.node is not None and third.digest != first.digest


def test_a_static_node_that_does_not_hold_the_member_asks_for_all_and_gets_it_at_once() -> None:
    alice, fake = make_node("alice", "10.1.1.1", 1), Fake(2)
    fake.answer_keyreq(alice)
    [first] = hellos(alice, fake, NOW)
    alice.datagram(NOW + 1, fake.to(alice, m.HelloAck(BETA_INFO, 3, first.digest)), BETA_ADMIN)
    [short] = hellos(alice, fake, NOW + 2)
    assert short.node is None
    alice.datagram(NOW + 2, fake.to(alice, m.HelloAck(None, 3, b"")), BETA_ADMIN)  # it forgot us
    again = [msg for data, _ in alice.take_outgoing() if (msg := fake.read(data)[1]) is not None]
    assert [type(x) for x in again] == [m.Hello] and again[0].node is not None  # type: ignore[union-attr]


def test_static_node_takes_a_short_hello_only_for_what_it_holds() -> None:
    hub, alice = beta(), Fake(1)
    cookie = alice.cookie(hub, ALICE_SRC)
    digest = m.digest(ALICE)
    short = alice.to(hub, m.Hello(None, 0, cookie, digest))
    hub.datagram(NOW, short, ALICE_SRC)  # never said who it is: asked for all of it
    [(data, _)] = hub.take_outgoing()
    _, ack = alice.read(data)
    assert isinstance(ack, m.HelloAck) and ack.digest == b"" and ALICE.public_key not in hub.hub.members  # type: ignore[union-attr]
    hub.datagram(NOW, alice.to(hub, m.Hello(ALICE, 0, cookie, digest)), ALICE_SRC)
    assert ALICE.public_key in hub.hub.members  # type: ignore[union-attr]
    hub.take_outgoing()
    seen = hub.hub.members[ALICE.public_key].last_seen  # type: ignore[union-attr]
    hub.datagram(NOW + 1, alice.to(hub, m.Hello(None, 1, cookie, digest)), ALICE_SRC)
    assert hub.hub.members[ALICE.public_key].last_seen == NOW + 1 > seen  # type: ignore[union-attr]
    replies = [alice.read(d)[1] for d, _ in hub.take_outgoing()]
    assert any(isinstance(r, m.HelloAck) and r.digest == digest for r in replies)
    # Another run of alice (a restart) cannot go on from what the old one said.
    restarted = Fake(1, epoch=77)
    cookie = restarted.cookie(hub, ALICE_SRC)
    hub.datagram(NOW + 2, restarted.to(hub, m.Hello(None, 1, cookie, digest)), ALICE_SRC)
    [(data, _)] = hub.take_outgoing()
    assert restarted.read(data)[1].digest == b""  # type: ignore[union-attr]


def test_an_unproven_short_hello_gets_a_cookie_no_larger() -> None:
    hub, alice = beta(), Fake(1)
    hello = alice.to(hub, m.Hello(None, 0, b"", m.digest(ALICE)))
    hub.datagram(NOW, hello, ALICE_SRC)
    assert hub.take_outgoing() == [] and hub.drops["unproven"] == 1  # a COOKIE would be larger
    padded = alice.to(hub, m.Hello(ALICE, 0))  # whole: larger than the COOKIE
    hub.datagram(NOW, padded, ALICE_SRC)
    [(data, _)] = hub.take_outgoing()
    assert isinstance(alice.read(data)[1], m.Cookie) and len(data) <= len(padded)
