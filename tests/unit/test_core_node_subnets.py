"""A node routes the subnets the nodes in its view announce (core/subnets.py through Node):
AllowedIPs, routes, the status; and a gateway's own side."""

from __future__ import annotations

import random
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Optional

from corekit import (
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
    linked,
    make_node,
)

from wg_netmanager.core import messages as m
from wg_netmanager.core.node import Node, Params

LAN = IPv4Network("192.168.50.0/24")
DELTA = info("delta", "10.1.1.4", 4, subnets=(LAN,), locals=(IPv4Interface("192.168.50.1/24"),))


def with_table(*entries: m.NodeInfo, routed: Optional[tuple[str, ...]] = None) -> Node:
    alice, fake_beta = make_node("alice", "10.1.1.1", 1), Fake(2)
    if routed is not None:
        alice.set_routed_subnets(tuple(IPv4Network(n) for n in routed))
    linked(alice, fake_beta)
    for chunk in m.chunk_table(5, [BETA_INFO, *entries]):
        alice.datagram(NOW, fake_beta.to(alice, chunk), BETA_ADMIN)
    alice.tick(NOW)
    return alice


def test_an_announced_subnet_goes_where_its_node_goes() -> None:
    alice = with_table(DELTA, info("charlie", "10.1.1.3", 3))
    desired = alice.desired(NOW)
    assert desired.routes == (LAN,)
    assert not desired.forwarding and desired.gateway_for == ()
    allowed = {p.public_key: p.allowed_ips for p in desired.peers}
    # delta has no direct path yet: it and its LAN go through beta, its static node
    assert LAN in allowed[key(2)] and IPv4Network("10.1.1.4/32") in allowed[key(2)]
    assert allowed[key(4)] == ()
    st = alice.status(NOW)
    assert st["subnets"] == {
        "own": [],
        "routes": [{"subnet": "192.168.50.0/24", "via": "delta", "path": "gateway"}],
        "refused": [],
    }
    assert next(p for p in st["peers"] if p["name"] == "delta")["subnets"] == ["192.168.50.0/24"]
    # delta's address on that LAN is no candidate for a direct path from here
    assert alice.view[key(4)].locals == ()


def test_refusals_are_in_the_status_and_nothing_is_routed() -> None:
    own_lan = info("eve", "10.1.1.5", 5, subnets=(IPv4Network("192.168.1.0/24"),))  # alice's LAN
    alice = with_table(own_lan)
    assert alice.desired(NOW).routes == ()
    assert alice.status(NOW)["subnets"]["refused"] == [
        {"subnet": "192.168.1.0/24", "node": "eve", "reason": "overlaps 192.168.1.0/24, which is this node's"}
    ]


def test_a_subnet_that_holds_a_static_nodes_address_is_refused() -> None:
    hijack = info("eve", "10.1.1.5", 5, subnets=(IPv4Network("198.51.100.0/24"),))
    alice = with_table(hijack, routed=("0.0.0.0/1", "128.0.0.0/1"))  # net.yaml permits anything
    assert alice.desired(NOW).routes == ()
    [refusal] = alice.status(NOW)["subnets"]["refused"]
    assert refusal["reason"] == "holds 198.51.100.2, an address the tunnel itself is carried to"


def test_a_gateway_announces_its_subnets_and_forwards() -> None:
    ip = IPv4Address("10.1.1.4")
    params = Params("delta", ip, SUBNET, key(4), 50000, 50001, (BETA,), subnets=(LAN,), masquerade=True)
    delta = Node(params, SHARED, ident(4), NOW, random.Random(4))
    delta.set_locals([IPv4Interface("192.168.50.1/24"), IPv4Interface("192.168.1.4/24")])
    assert delta._me().subnets == (LAN,)
    desired = delta.desired(NOW)
    assert desired.forwarding and desired.gateway_for == (LAN,) and desired.masquerade
    assert desired.routes == ()
    assert delta.status(NOW)["subnets"]["own"] == ["192.168.50.0/24"]


def test_a_public_subnet_only_where_net_yaml_permits_it_and_a_reload_applies_at_once() -> None:
    eve = info("eve", "10.1.1.5", 5, subnets=(IPv4Network("8.8.8.0/24"),))
    alice = with_table(eve)
    assert alice.desired(NOW).routes == ()
    alice.set_routed_subnets((IPv4Network("8.8.0.0/16"),))
    alice.tick(NOW)
    assert alice.desired(NOW).routes == (IPv4Network("8.8.8.0/24"),)
    assert alice.status(NOW)["subnets"]["refused"] == []


def test_with_a_ca_a_subnet_is_routed_only_within_the_announcers_certificate() -> None:
    from wg_netmanager.core import trust
    from wg_netmanager.core.cert import CaKey, sign

    ca = CaKey(bytes([9]) * 32)

    def cert(name: str, ip: str, n: int, *subnets: str) -> bytes:
        day = 86400
        c = sign(
            ca,
            serial=n,
            name=name,
            wg_ip=IPv4Address(ip),
            public_key=key(n),
            subnets=tuple(IPv4Network(s) for s in subnets),
            not_before=int(NOW) - day,
            not_after=int(NOW) + day,
        )
        return trust.compact(c)

    params = Params(
        "alice", IPv4Address("10.1.1.1"), SUBNET, key(1), 50000, 50001, (BETA,), ca_public_key=ca.public,
        cert=cert("alice", "10.1.1.1", 1),
    )  # fmt: skip
    alice = Node(params, SHARED, ident(1), NOW, random.Random(1))
    alice.set_locals([IPv4Interface("192.168.1.3/24")])
    fake = Fake(2)
    fake.answer_keyreq(alice)
    beta = replace(BETA_INFO, cert=cert("beta", "10.1.1.2", 2))
    alice.datagram(NOW, fake.to(alice, m.HelloAck(beta, 5)), BETA_ADMIN)
    delta = replace(
        DELTA,
        subnets=(LAN, IPv4Network("172.16.0.0/24")),
        cert=cert("delta", "10.1.1.4", 4, "192.168.0.0/16"),
    )
    alice.datagram(NOW, fake.to(alice, m.TableChunk(6, 0, 1, (beta, delta))), BETA_ADMIN)
    alice.tick(NOW)
    assert alice.desired(NOW).routes == (LAN,)
    assert alice.status(NOW)["subnets"]["refused"] == [
        {"subnet": "172.16.0.0/24", "node": "delta", "reason": "not in its certificate"}
    ]
