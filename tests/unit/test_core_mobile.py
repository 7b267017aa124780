"""Data-limited mobile nodes (core/mobile.py): what a mobile node names, who may probe whom,
how a home times it out, and the NodeInfo fields that carry it."""

from __future__ import annotations

import base64
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from wg_netmanager.core import messages as m
from wg_netmanager.core import mobile
from wg_netmanager.core.hub import Member
from wg_netmanager.core.nodeinfo import MAX_WISHES
from wg_netmanager.core.wire import Drop

ME = IPv4Address("10.1.1.9")


def info(n: int, **kw: Any) -> m.NodeInfo:
    key = base64.b64encode(n.to_bytes(32, "big")).decode()
    return m.NodeInfo(f"node{n}", IPv4Address(f"10.1.1.{n}"), key, 50000, 50001, **kw)


def test_wishes_are_the_active_peers_in_view_but_static_nodes_lowest_first_and_bounded() -> None:
    view = {i.public_key: i for i in (info(2), info(3, static=True), *(info(n) for n in range(10, 40)))}
    active = {
        IPv4Address("10.1.1.3"),
        IPv4Address("10.1.1.99"),
        *(IPv4Address(f"10.1.1.{n}") for n in range(12, 40)),
    }
    got = mobile.wishes(active, view)
    assert got == tuple(IPv4Address(f"10.1.1.{n}") for n in range(12, 12 + MAX_WISHES))
    assert mobile.wishes(set(), view) == ()


def test_a_mobile_node_probes_only_peers_it_has_traffic_with_and_a_mobile_peer_only_while_it_names_us() -> (
    None
):
    normal, phone = info(2), info(3, mobile=True)
    assert mobile.may_probe(False, ME, set(), normal)
    assert not mobile.may_probe(True, ME, set(), normal)
    assert mobile.may_probe(True, ME, {normal.wg_ip}, normal)
    assert not mobile.may_probe(False, ME, set(), phone)
    named = info(3, mobile=True, wishes=(ME,))
    assert mobile.may_probe(False, ME, set(), named)
    assert not mobile.may_probe(True, ME, set(), named)  # two mobile nodes: both need traffic
    assert mobile.may_probe(True, ME, {named.wg_ip}, named)


def test_mobile_and_wishes_survive_the_wire_and_too_many_wishes_are_malformed() -> None:
    phone = info(3, mobile=True, wishes=(ME, IPv4Address("10.1.1.4")))
    assert m.NodeInfo.from_json(phone.to_json()) == phone
    assert "mb" not in info(2).to_json() and "w" not in info(2).to_json()  # unchanged for the others
    doc = phone.to_json() | {"w": [str(ME)] * (MAX_WISHES + 1)}
    with pytest.raises(Drop):
        m.NodeInfo.from_json(doc)
    with pytest.raises(Drop):
        m.NodeInfo.from_json(phone.to_json() | {"w": "10.1.1.9"})


def test_a_home_keeps_a_mobile_member_through_two_lost_hellos() -> None:
    normal, phone = Member(info(2), last_seen=100.0), Member(info(3, mobile=True), last_seen=100.0)
    assert normal.expires(10.0, 25.0) == 110.0
    assert phone.expires(10.0, 25.0) == 100.0 + mobile.MEMBER_TIMEOUT
    assert mobile.MEMBER_TIMEOUT > 2 * mobile.HELLO_EVERY


def test_mobile_params_talk_to_one_home_seldom() -> None:
    from wg_netmanager.core.params import Params

    p = mobile.params(Params("n", ME, IPv4Network("10.1.0.0/16"), info(9).public_key, 1, 2, ()))
    assert (p.mobile, p.homes, p.idle_heartbeat) == (True, 1, mobile.HELLO_EVERY)
    assert p.static_keepalive > p.idle_heartbeat  # the keepalive never fires while HELLOs go


NET = {
    "network": {"sharedKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "subnet": "10.1.1.0/24"},
    "peers": {"beta": {"wgIp": "10.1.1.2", "endPoint": "198.51.100.2:50000"}},
}


def test_mode_mobile_in_peer_yaml_or_on_the_command_line_and_never_for_a_static_node() -> None:
    from wg_netmanager.core.config import (
        ConfigError,
        node_settings,
        parse_net,
        parse_peer_file,
        peer_overrides,
    )
    from wg_netmanager.io.reconfig import params

    net = parse_net(NET, "net.yaml")
    phone = parse_peer_file({"name": "phone", "wgIp": "10.1.1.9", "mode": "mobile"}, "peer.yaml")
    s = node_settings(net, phone)
    assert s.mobile
    assert not node_settings(net, phone, peer_overrides(mode="normal")).mobile  # the command line wins
    p = params(s, net, info(9).public_key, 50000, b"")
    assert (p.mobile, p.homes, p.idle_heartbeat) == (True, 1, mobile.HELLO_EVERY)
    with pytest.raises(
        ConfigError, match=r"peer.yaml: mode: unknown mode 'phone' \(one of: normal, mobile\)"
    ):
        parse_peer_file({"name": "phone", "wgIp": "10.1.1.9", "mode": "phone"}, "peer.yaml")
    with pytest.raises(ConfigError, match="--mode: mobile: beta is a static node in net.yaml"):
        node_settings(net, None, peer_overrides(name="beta", mode="mobile"))
