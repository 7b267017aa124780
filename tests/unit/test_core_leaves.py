"""Leaves (core/leaves.py): agent-less WireGuard peers in net.yaml, held by a static node as
WireGuard peers and routed through it by everyone else."""

from __future__ import annotations

import base64
import random
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

import pytest
from corekit import BETA, BETA_ADMIN, BETA_INFO, NOW, SHARED, SUBNET, Fake, ident, info, key, linked

from wg_netmanager.core import messages as m
from wg_netmanager.core.config import ConfigError, parse_net
from wg_netmanager.core.leaves import Leaf
from wg_netmanager.core.model import PeerSpec, PeerStats
from wg_netmanager.core.node import Node, Params

PHONE_KEY = base64.b64encode(bytes([77]) * 32).decode()
PHONE = Leaf("phone", IPv4Address("10.1.1.50"), PHONE_KEY, "beta")


def with_leaves(**leaves: Any) -> dict[str, Any]:
    return {
        "network": {"sharedKey": base64.b64encode(SHARED).decode(), "subnet": "10.1.1.0/24"},
        "peers": {
            "beta": {"endPoint": "198.51.100.2:50000", "wgIp": "10.1.1.2"},
            "gamma": {"endPoint": "198.51.100.3:50000", "wgIp": "10.1.1.3"},
        },
        "leaves": leaves,
    }


def test_leaves_in_net_yaml() -> None:
    cfg = parse_net(
        with_leaves(phone={"publicKey": PHONE_KEY, "wgIp": "10.1.1.50", "home": "beta"}), "net.yaml"
    )
    assert cfg.leaves == (PHONE,)
    assert parse_net({k: v for k, v in with_leaves().items() if k != "leaves"}, "net.yaml").leaves == ()


def spec(**kw: Any) -> dict[str, Any]:
    return {
        k: v for k, v in ({"publicKey": PHONE_KEY, "wgIp": "10.1.1.50", "home": "beta"} | kw).items() if v
    }


@pytest.mark.parametrize(
    ("given", "field", "reason"),
    [
        (spec(publicKey=None), "leaves.phone.publicKey", "missing"),
        (spec(publicKey="nope"), "leaves.phone.publicKey", "not a WireGuard public key (32 bytes): 'nope'"),
        (
            spec(wgIp="10.2.0.1"),
            "leaves.phone.wgIp",
            "10.2.0.1 is outside the subnet 10.1.1.0/24 of net.yaml",
        ),
        (spec(wgIp="10.1.1.2"), "leaves.phone.wgIp", "10.1.1.2 is static node beta's"),
        (spec(home="alice"), "leaves.phone.home", "alice is not a static node of net.yaml (beta, gamma)"),
        (spec(x=1), "leaves.phone.x", "unknown field (expected one of: publicKey, wgIp, home)"),
    ],
)
def test_bad_leaves(given: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_net(with_leaves(phone=given), "net.yaml")
    assert (exc.value.field, exc.value.reason) == (field, reason)


def test_two_leaves_may_not_share_an_address_or_a_key() -> None:
    other = base64.b64encode(bytes([78]) * 32).decode()
    same_ip = with_leaves(
        phone={"publicKey": PHONE_KEY, "wgIp": "10.1.1.50", "home": "beta"},
        tablet={"publicKey": other, "wgIp": "10.1.1.50", "home": "beta"},
    )
    with pytest.raises(ConfigError, match="10.1.1.50 is already leaf phone's"):
        parse_net(same_ip, "net.yaml")
    same_key = with_leaves(
        phone={"publicKey": PHONE_KEY, "wgIp": "10.1.1.50", "home": "beta"},
        tablet={"publicKey": PHONE_KEY, "wgIp": "10.1.1.51", "home": "beta"},
    )
    with pytest.raises(ConfigError, match="the same key as leaf phone"):
        parse_net(same_key, "net.yaml")


def node(name: str, ip: str, n: int, leaves: tuple[Leaf, ...] = (PHONE,), statics: Any = (BETA,)) -> Node:
    params = Params(name, IPv4Address(ip), SUBNET, key(n), 50000, 50001, statics, leaves=leaves)
    nd = Node(params, SHARED, ident(n), NOW, random.Random(n))
    nd.set_locals([IPv4Interface("192.168.1.3/24")])
    return nd


def test_the_home_holds_the_leaf_as_a_wireguard_peer() -> None:
    beta = node("beta", "10.1.1.2", 2)
    peers = {p.public_key: p for p in beta.desired(NOW).peers}
    assert peers[PHONE_KEY] == PeerSpec(PHONE_KEY, None, (IPv4Network("10.1.1.50/32"),))
    assert beta.desired(NOW).forwarding
    [entry] = beta.status(NOW)["leaves"]
    assert entry == {"name": "phone", "wgIp": "10.1.1.50", "home": "beta", "path": "none", "gateway": None}
    beta.set_stats({PHONE_KEY: PeerStats(PHONE_KEY, None, NOW - 5.0)})  # it connected 5 s ago
    assert beta.status(NOW)["leaves"][0]["path"] == "nat"


def test_everyone_else_routes_the_leaf_through_its_home() -> None:
    alice = node("alice", "10.1.1.1", 1)
    assert PHONE_KEY not in {p.public_key for p in alice.desired(NOW).peers}
    assert alice.status(NOW)["leaves"][0]["path"] == "none"  # beta not reached yet
    linked(alice, Fake(2))
    alice.tick(NOW)
    peers = {p.public_key: p for p in alice.desired(NOW).peers}
    assert IPv4Network("10.1.1.50/32") in peers[key(2)].allowed_ips
    assert PHONE_KEY not in peers
    assert alice.status(NOW)["leaves"][0] | {} == {
        "name": "phone", "wgIp": "10.1.1.50", "home": "beta", "path": "gateway", "gateway": "beta"
    }  # fmt: skip


def test_no_node_may_claim_a_leafs_address_or_key() -> None:
    alice, fake_beta = node("alice", "10.1.1.1", 1), Fake(2)
    linked(alice, fake_beta)
    thief = info("mallory", "10.1.1.50", 9)  # the phone's address
    impostor = m.NodeInfo("mallory2", IPv4Address("10.1.1.51"), PHONE_KEY, 50000, 50001)
    for chunk in m.chunk_table(5, [BETA_INFO, thief, impostor]):
        alice.datagram(NOW, fake_beta.to(alice, chunk), BETA_ADMIN)
    alice.tick(NOW)
    assert {i.name for i in alice.view.values()} == {"beta"}
    owners = [p.public_key for p in alice.desired(NOW).peers if IPv4Network("10.1.1.50/32") in p.allowed_ips]
    assert owners == [key(2)]
    beta = node("beta", "10.1.1.2", 2)
    assert beta.hub is not None
    assert beta.hub.check_claim(thief) == "the address or key of leaf phone"
    assert beta.hub.check_claim(impostor) == "the address or key of leaf phone"


def test_a_reload_adds_and_removes_leaves_while_running() -> None:
    beta, alice = node("beta", "10.1.1.2", 2, leaves=()), node("alice", "10.1.1.1", 1, leaves=())
    linked(alice, Fake(2))
    alice.tick(NOW)
    assert PHONE_KEY not in {p.public_key for p in beta.desired(NOW).peers}
    beta.set_leaves((PHONE,))
    alice.set_leaves((PHONE,))
    assert PHONE_KEY in {p.public_key for p in beta.desired(NOW).peers}
    peers = {p.public_key: p for p in alice.desired(NOW).peers}
    assert IPv4Network("10.1.1.50/32") in peers[key(2)].allowed_ips
    assert [e["name"] for e in alice.status(NOW)["leaves"]] == ["phone"]
    beta.set_leaves(())
    alice.set_leaves(())
    assert PHONE_KEY not in {p.public_key for p in beta.desired(NOW).peers}
    assert all(IPv4Network("10.1.1.50/32") not in p.allowed_ips for p in alice.desired(NOW).peers)
    assert "leaves" not in alice.status(NOW)


def test_a_member_holding_what_a_reload_gives_a_leaf_is_dropped_by_its_static_node() -> None:
    beta = node("beta", "10.1.1.2", 2, leaves=())
    assert beta.hub is not None
    thief = info("mallory", "10.1.1.50", 9)
    beta.hub.hello(thief, NOW, None, 0)
    assert key(9) in beta.hub.members
    beta.set_leaves((PHONE,))
    assert key(9) not in beta.hub.members
    assert beta.hub.check_claim(thief) == "the address or key of leaf phone"
