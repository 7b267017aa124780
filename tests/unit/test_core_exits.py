"""Exit nodes (core/exits.py and their way through Node, config and the gateway's rules)."""

from __future__ import annotations

import random
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Optional

import pytest
from corekit import BETA, BETA_ADMIN, BETA_INFO, NOW, SHARED, SUBNET, Fake, ident, info, key, linked

from wg_netmanager.backends import gateway as g
from wg_netmanager.backends.uapi import device_lines
from wg_netmanager.core import exits
from wg_netmanager.core import messages as m
from wg_netmanager.core.config import ConfigError, node_settings, parse_net, peer_overrides
from wg_netmanager.core.node import Node, Params

EVERYTHING = IPv4Network("0.0.0.0/0")


def user(use: Optional[str] = "beta") -> Node:
    params = Params("alice", IPv4Address("10.1.1.1"), SUBNET, key(1), 50000, 50001, (BETA,), use_exit=use)
    node = Node(params, SHARED, ident(1), NOW, random.Random(1))
    node.set_locals([IPv4Interface("192.168.1.3/24")])
    return node


def offering(beta_exit: bool = True, *entries: m.NodeInfo, use: str = "beta") -> Node:
    alice, fake = user(use), Fake(2)
    fake.answer_keyreq(alice)
    beta = replace(BETA_INFO, exit=beta_exit)
    alice.datagram(NOW, fake.to(alice, m.HelloAck(beta, 5)), BETA_ADMIN)
    alice.datagram(NOW, fake.to(alice, m.TableChunk(5, 0, 1, (beta, *entries))), BETA_ADMIN)
    alice.tick(NOW)
    return alice


def test_internet_traffic_goes_to_a_static_exit_node_that_offers() -> None:
    alice = offering()
    desired = alice.desired(NOW)
    peers = {p.public_key: p for p in desired.peers}
    assert EVERYTHING in peers[key(2)].allowed_ips and desired.exit_via
    assert alice.status(NOW)["exitNode"] == {"offers": False, "uses": "beta", "active": True}


def test_no_exit_while_it_does_not_offer_or_is_not_chosen() -> None:
    unchosen = user(None)
    linked(unchosen, Fake(2))
    unchosen.tick(NOW)
    for alice in (offering(beta_exit=False), unchosen):
        desired = alice.desired(NOW)
        assert not desired.exit_via
        assert all(EVERYTHING not in p.allowed_ips for p in desired.peers)


def test_in_shared_key_mode_a_member_cannot_be_the_exit() -> None:
    """eve says it offers and alice names it: in shared-key mode her name is no proof."""
    eve = info("eve", "10.1.1.5", 5, exit=True)
    alice = offering(True, eve, use="eve")
    assert not alice.desired(NOW).exit_via
    assert alice.status(NOW)["exitNode"]["active"] is False


def test_with_a_ca_the_certificate_must_list_everything() -> None:
    eve = info("eve", "10.1.1.5", 5, exit=True)
    view = {eve.public_key: eve}
    assert exits.choose(view, "eve", {}, lambda i: (EVERYTHING,)) == eve.public_key
    assert exits.choose(view, "eve", {}, lambda i: (IPv4Network("192.168.0.0/16"),)) is None
    assert exits.choose(view, "eve", {}, lambda i: None) is None  # shared-key: not static
    assert exits.choose(view, "eve", {"eve": eve.public_key}, lambda i: None) == eve.public_key


def test_an_exit_node_forwards_and_says_so() -> None:
    params = Params("beta", IPv4Address("10.1.1.2"), SUBNET, key(2), 50000, 50001, (BETA,), exit_node=True)
    beta = Node(params, SHARED, ident(2), NOW, random.Random(2))
    assert beta._me().exit and beta.desired(NOW).exit_offer and beta.desired(NOW).forwarding
    assert m.NodeInfo.from_json(beta._me().to_json()).exit


def test_a_node_that_offers_an_exit_uses_none() -> None:
    net = parse_net(
        {"network": {"sharedKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "subnet": "10.1.1.0/24"}},
        "net.yaml",
    )
    with pytest.raises(ConfigError, match="a node that offers an exit uses none"):
        node_settings(
            net,
            None,
            peer_overrides(name="a", wg_ip=IPv4Address("10.1.1.9"), exit_node=True, use_exit_node="b"),
        )
    s = node_settings(net, None, peer_overrides(name="a", wg_ip=IPv4Address("10.1.1.9"), use_exit_node="b"))
    assert (s.exit_node, s.use_exit_node) == (False, "b")


def test_the_devices_fwmark_and_the_exit_nodes_masquerading() -> None:
    assert device_lines(fwmark=0x574E) == ["fwmark=22350"]
    script = g.Gateway("wg0")._ruleset((g.EVERYTHING,))
    assert 'iifname "wg0" oifname != "wg0" masquerade' in script and "daddr" not in script
