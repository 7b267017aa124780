"""The network CA in the protocol: with `caPublicKey`, a claim to a name and an address is
believed only with a certificate of the CA for exactly that name, address and key, valid now
and not revoked: in a HELLO (static node), a HELLO_ACK (member) and every table entry."""

from __future__ import annotations

import dataclasses
import json
import random
from ipaddress import IPv4Address, IPv4Interface

import pytest
from corekit import (
    ALICE_SRC,
    BETA,
    BETA_ADMIN,
    BETA_INFO,
    NOW,
    SHARED,
    SUBNET,
    Fake,
    ident,
    info,
    key,
    names,
)

from wg_netmanager.core import messages as m
from wg_netmanager.core import trust
from wg_netmanager.core.cert import CaKey, CertError, sign
from wg_netmanager.core.node import Node, Params
from wg_netmanager.core.trust import NO_SIGNATURE, Trust
from wg_netmanager.core.wire import Drop

CA = CaKey(bytes([9]) * 32)
ROGUE = CaKey(bytes([10]) * 32)  # a CA of the attacker's own
DAY = 86400


def cert(name: str, ip: str, n: int, ca: CaKey = CA, serial: int = 0, **kw: int) -> bytes:
    validity = {"not_before": int(NOW) - DAY, "not_after": int(NOW) + DAY} | kw
    c = sign(ca, serial=serial or n, name=name, wg_ip=IPv4Address(ip), public_key=key(n), **validity)
    return trust.compact(c)


def ca_node(name: str, ip: str, n: int, revoked: frozenset[int] = frozenset(), **kw: bytes) -> Node:
    params = Params(
        name,
        IPv4Address(ip),
        SUBNET,
        key(n),
        50000,
        50001,
        (BETA,),
        ca_public_key=CA.public,
        revoked=revoked,
        cert=kw.get("own", cert(name, ip, n)),
    )
    node = Node(params, SHARED, ident(n), NOW, random.Random(n))
    node.set_locals([IPv4Interface("192.168.1.3/24")])
    return node


ALICE = info("alice", "10.1.1.1", 1)


def test_compact_form_round_trips_and_stays_small() -> None:
    c = sign(
        CA,
        serial=77,
        name="alice",
        wg_ip=IPv4Address("10.1.1.1"),
        public_key=key(1),
        not_before=1,
        not_after=2,
    )
    blob = trust.compact(c)
    assert len(blob) == 89
    assert trust.expand(blob, "alice", c.wg_ip, key(1), CA.public) == c
    for bad in (b"", blob[:-1], blob + b"x", blob[:24] + b"\x09" + blob[25:]):
        with pytest.raises(CertError):
            trust.expand(bad, "alice", c.wg_ip, key(1), CA.public)


@pytest.mark.parametrize(
    ("blob", "claim", "why"),
    [
        (b"", ALICE, "no certificate"),
        (cert("alice", "10.1.1.1", 1), ALICE, None),
        (cert("bob", "10.1.1.3", 3), ALICE, NO_SIGNATURE),  # another node's
        (cert("alice", "10.1.1.1", 1, ROGUE), ALICE, NO_SIGNATURE),  # self-signed
        (cert("alice", "10.1.1.9", 1), ALICE, NO_SIGNATURE),  # for another address
        (cert("alice", "10.1.1.1", 1), dataclasses.replace(ALICE, name="bob"), NO_SIGNATURE),
        (cert("alice", "10.1.1.1", 1, not_after=int(NOW) - 1), ALICE, "certificate expired"),
        (cert("alice", "10.1.1.1", 1, not_before=int(NOW) + 60), ALICE, "certificate not valid before"),
        (cert("alice", "10.1.1.1", 1, serial=0xBAD), ALICE, "certificate revoked (serial 0000000000000bad)"),
        (b"\x00" * 40, ALICE, "certificate: malformed"),
    ],
)
def test_trust_believes_only_the_certificate_for_the_claim(blob: bytes, claim: m.NodeInfo, why: str) -> None:
    verdict = Trust(CA.public, {0xBAD}).check(blob, claim.name, claim.wg_ip, claim.public_key, NOW)
    assert verdict == why or (why and verdict and verdict.startswith(why))
    assert Trust().check(blob, claim.name, claim.wg_ip, claim.public_key, NOW) is None  # shared key


def test_node_info_carries_its_certificate_and_a_bad_one_is_one_skipped_entry() -> None:
    good = dataclasses.replace(ALICE, cert=cert("alice", "10.1.1.1", 1))
    assert m.NodeInfo.from_json(good.to_json()) == good
    bad = good.to_json() | {"ct": "not base64!"}
    with pytest.raises(Drop):
        m.NodeInfo.from_json(bad)
    _, body = m.encode(m.TableChunk(3, 0, 1, (good,)))
    body = body.replace(b'"e":[', b'"e":[' + json.dumps(bad).encode() + b",")
    assert m.decode(m.MsgType.TABLE, body).entries == (good,)  # type: ignore[union-attr]


def _hello(hub: Node, who: m.NodeInfo, n: int) -> bool:
    """A member's HELLO with a cookie: True if the static node took it as a member."""
    Fake(n).hello(hub, who, ALICE_SRC)
    hub.take_outgoing()
    return who.public_key in hub.hub.members  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("blob", "accepted"),
    [
        (cert("alice", "10.1.1.1", 1), True),
        (b"", False),
        (cert("carol", "10.1.1.3", 3), False),
        (cert("alice", "10.1.1.1", 1, ROGUE), False),
        (cert("alice", "10.1.1.1", 1, not_after=int(NOW) - 1), False),
        (cert("alice", "10.1.1.1", 1, serial=0xBAD), False),
    ],
)
def test_static_node_takes_only_certified_members(blob: bytes, accepted: bool) -> None:
    beta = ca_node("beta", "10.1.1.2", 2, revoked=frozenset({0xBAD}))
    rejected = beta.drops["rejected"]
    assert _hello(beta, dataclasses.replace(ALICE, cert=blob), 1) is accepted
    assert beta.drops["rejected"] == rejected + (not accepted)
    assert ("alice" in names(beta)) is accepted
    assert beta.status(NOW)["mode"] == "ca"


def _linked(alice: Node, beta_info: m.NodeInfo) -> None:
    fake = Fake(2)
    fake.answer_keyreq(alice)
    alice.datagram(NOW, fake.to(alice, m.HelloAck(beta_info, 5)), BETA_ADMIN)


def test_member_takes_a_static_node_only_with_its_certificate() -> None:
    alice = ca_node("alice", "10.1.1.1", 1)
    _linked(alice, BETA_INFO)  # a static node's address and name, but no certificate
    assert alice.links["beta"].info is None and alice.drops["rejected"] == 1
    alice = ca_node("alice", "10.1.1.1", 1)
    certified = dataclasses.replace(BETA_INFO, cert=cert("beta", "10.1.1.2", 2))
    _linked(alice, certified)
    assert alice.links["beta"].info == certified


def test_table_entries_without_a_valid_certificate_stay_out_of_the_view() -> None:
    alice = ca_node("alice", "10.1.1.1", 1)
    fake = Fake(2)
    fake.answer_keyreq(alice)
    certified = dataclasses.replace(BETA_INFO, cert=cert("beta", "10.1.1.2", 2))
    alice.datagram(NOW, fake.to(alice, m.HelloAck(certified, 5)), BETA_ADMIN)
    entries = (
        info("carol", "10.1.1.3", 3, cert=cert("carol", "10.1.1.3", 3)),
        info("dave", "10.1.1.4", 4),  # no certificate
        info("erin", "10.1.1.5", 5, cert=cert("carol", "10.1.1.3", 3)),  # carol's
        info("frank", "10.1.1.6", 6, cert=cert("frank", "10.1.1.6", 6, ROGUE)),
        info("gina", "10.1.1.7", 7, cert=cert("gina", "10.1.1.77", 7)),  # another address
    )
    alice.datagram(NOW, fake.to(alice, m.TableChunk(6, 0, 1, entries)), BETA_ADMIN)
    assert names(alice) == {"beta", "carol"}


def test_a_certificate_that_expires_takes_its_node_out_of_the_view_at_that_moment() -> None:
    alice = ca_node("alice", "10.1.1.1", 1)
    fake = Fake(2)
    fake.answer_keyreq(alice)
    certified = dataclasses.replace(BETA_INFO, cert=cert("beta", "10.1.1.2", 2))
    alice.datagram(NOW, fake.to(alice, m.HelloAck(certified, 5)), BETA_ADMIN)
    carol = info("carol", "10.1.1.3", 3, cert=cert("carol", "10.1.1.3", 3, not_after=int(NOW) + 30))
    alice.datagram(NOW, fake.to(alice, m.TableChunk(6, 0, 1, (carol,))), BETA_ADMIN)
    assert names(alice) == {"beta", "carol"}
    assert alice.next_deadline(NOW + 0.1) <= NOW + 31  # the core asks to run when it expires
    alice.datagram(NOW + 30.5, fake.to(alice, m.HelloAck(certified, 6)), BETA_ADMIN)  # beta lives on
    assert names(alice, NOW + 31) == {"beta"}


def test_a_wall_clock_step_is_seen_by_the_certificates() -> None:
    alice = ca_node("alice", "10.1.1.1", 1)
    certified = dataclasses.replace(BETA_INFO, cert=cert("beta", "10.1.1.2", 2))
    _linked(alice, certified)
    assert names(alice) == {"beta"}
    alice.set_wall_clock(2 * DAY)  # the wall clock jumped two days ahead: beta's cert expired
    assert names(alice) == set()


def test_own_certificate_is_checked_for_this_node() -> None:
    c = trust.expand(cert("alice", "10.1.1.1", 1), "alice", IPv4Address("10.1.1.1"), key(1), CA.public)
    trust.check_own(c, "alice", IPv4Address("10.1.1.1"), key(1), CA.public, (), NOW)
    cases = [
        (("bob", IPv4Address("10.1.1.1"), key(1), CA.public, (), NOW), "is for 'alice'"),
        (("alice", IPv4Address("10.1.1.9"), key(1), CA.public, (), NOW), "gives address 10.1.1.1"),
        (("alice", IPv4Address("10.1.1.1"), key(2), CA.public, (), NOW), "WireGuard key"),
        (("alice", IPv4Address("10.1.1.1"), key(1), ROGUE.public, (), NOW), "other issuer"),
        (("alice", IPv4Address("10.1.1.1"), key(1), CA.public, {1}, NOW), "revoked"),
        (("alice", IPv4Address("10.1.1.1"), key(1), None, (), NOW + 2 * DAY), "expired"),
    ]
    for args, why in cases:
        with pytest.raises(CertError, match=why):
            trust.check_own(c, *args)


def test_a_member_sending_a_new_certificate_in_every_hello_gets_few_signature_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each certificate not seen yet costs the static node an Ed25519 check: a member (it
    holds the shared key and its own identity) that sends a fresh bogus blob in every HELLO
    gets a few checks (the burst), then its HELLOs are dropped as limited, not verified."""
    beta = ca_node("beta", "10.1.1.2", 2)
    checks = []
    real = trust.verify
    monkeypatch.setattr(trust, "verify", lambda *a, **kw: checks.append(1) or real(*a, **kw))
    alice, src = Fake(1), ALICE_SRC
    cookie = alice.cookie(beta, src)
    good = cert("alice", "10.1.1.1", 1)
    limited = beta.drops["limited"]
    for i in range(100):
        bogus = good[:-64] + bytes([i]) * 64  # another signature each time
        claim = dataclasses.replace(ALICE, cert=bogus)
        beta.datagram(NOW, alice.to(beta, m.Hello(claim, 0, cookie)), src)
    assert len(checks) <= 4, len(checks)
    assert beta.drops["limited"] - limited >= 95
    beta.take_outgoing()
