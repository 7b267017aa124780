"""Subnet gateways in the core: which announced subnets a node routes, and the refusals."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

import pytest
from corekit import SUBNET, info

from wg_netmanager.core import messages as m
from wg_netmanager.core.model import Endpoint
from wg_netmanager.core.subnets import NO_SUBNETS, hide_routed_locals, plan

N = IPv4Network
HOME = IPv4Interface("192.168.1.3/24")  # this node's own LAN


def gw(name: str, n: int, *subnets: str, **kw: Any) -> m.NodeInfo:
    return info(name, f"10.1.1.{n}", n, subnets=tuple(N(s) for s in subnets), **kw)


def run(*nodes: m.NodeInfo, own: tuple[str, ...] = (), underlay: tuple[str, ...] = (), **kw: Any) -> Any:
    view = {i.public_key: i for i in nodes}
    return plan(view, SUBNET, [N(s) for s in own], [HOME], [IPv4Address(a) for a in underlay], **kw)


def routed(result: Any) -> dict[str, str]:
    names = {}
    for net, key in result.routes.items():
        names[str(net)] = key
    return names


def test_no_announcement_costs_nothing() -> None:
    assert run(info("a", "10.1.1.5", 5), info("b", "10.1.1.6", 6)) is NO_SUBNETS


def test_each_announcement_is_routed_to_its_node() -> None:
    d, e = gw("delta", 4, "192.168.50.0/24", "172.16.0.0/16"), gw("echo", 5, "192.168.60.0/24")
    result = run(d, e)
    assert routed(result) == {
        "192.168.50.0/24": d.public_key,
        "172.16.0.0/16": d.public_key,
        "192.168.60.0/24": e.public_key,
    }
    assert result.refused == ()
    assert result.route_for(IPv4Address("192.168.60.9")) == N("192.168.60.0/24")
    assert result.route_for(IPv4Address("192.168.61.9")) is None


@pytest.mark.parametrize(
    "subnet, own, why",
    [
        ("10.1.0.0/16", (), "overlaps 10.1.1.0/24, which is this node's"),  # the mesh
        ("192.168.1.0/25", (), "overlaps 192.168.1.0/24, which is this node's"),  # our LAN
        ("192.168.0.0/16", (), "overlaps 192.168.1.0/24, which is this node's"),
        ("172.20.0.0/24", ("172.20.0.0/16",), "overlaps 172.20.0.0/16, which is this node's"),
        ("198.51.100.0/24", (), "holds 198.51.100.2, an address the tunnel itself is carried to"),
        ("203.0.113.0/24", (), "holds 203.0.113.9, an address the tunnel itself is carried to"),
        ("0.0.0.0/1", (), "overlaps 10.1.1.0/24, which is this node's"),
    ],
)
def test_what_is_not_the_announcers_to_take_is_refused(subnet: str, own: tuple[str, ...], why: str) -> None:
    roamer = info("roamer", "10.1.1.9", 9, endpoint=Endpoint("203.0.113.9", 40000))
    anything = [N("0.0.0.0/0")]  # net.yaml permits every network: the other checks still hold
    result = run(gw("delta", 4, subnet), roamer, own=own, underlay=("198.51.100.2",), permitted=anything)
    assert result.routes == {}
    assert [r.to_json() for r in result.refused] == [{"subnet": subnet, "node": "delta", "reason": why}]


def test_only_what_net_yaml_permits_by_default_the_private_use_networks() -> None:
    d = gw("delta", 4, "192.168.50.0/24", "100.64.7.0/24", "8.0.0.0/8", "172.32.0.0/16")
    result = run(d)
    assert set(routed(result)) == {"192.168.50.0/24", "100.64.7.0/24"}
    why = "not a private-use network (net.yaml's network.routedSubnets may permit it)"
    assert [(str(r.subnet), r.reason) for r in result.refused] == [("8.0.0.0/8", why), ("172.32.0.0/16", why)]
    result = run(d, permitted=[N("8.8.0.0/16"), N("192.168.0.0/16")])
    assert set(routed(result)) == {"192.168.50.0/24"}
    assert {r.reason for r in result.refused} == {"not within net.yaml's network.routedSubnets"}


def test_overlapping_announcements_are_all_refused_and_the_rest_routed() -> None:
    d = gw("delta", 4, "172.16.50.0/24", "100.64.0.0/16")
    e = gw("echo", 5, "172.16.0.0/12")
    f = gw("fox", 6, "172.16.50.0/24")
    result = run(f, e, d)
    assert routed(result) == {"100.64.0.0/16": d.public_key}
    assert [(str(r.subnet), r.node, r.reason) for r in result.refused] == [
        ("172.16.50.0/24", "delta", "overlaps what echo, fox announce"),
        ("172.16.0.0/12", "echo", "overlaps what delta, fox announce"),
        ("172.16.50.0/24", "fox", "overlaps what delta, echo announce"),
    ]


def test_one_node_may_announce_nested_subnets() -> None:
    d = gw("delta", 4, "172.16.0.0/12", "172.16.50.0/24")
    assert set(routed(run(d))) == {"172.16.0.0/12", "172.16.50.0/24"}


def test_with_a_ca_only_what_the_certificate_lists() -> None:
    d, e = gw("delta", 4, "192.168.50.0/25", "192.168.60.0/24"), gw("echo", 5, "192.168.70.0/24")
    certs: dict[str, Optional[tuple[N, ...]]] = {"delta": (N("192.168.50.0/24"),), "echo": ()}
    result = run(d, e, allowed=lambda i: certs[i.name])
    assert routed(result) == {"192.168.50.0/25": d.public_key}
    assert [(str(r.subnet), r.reason) for r in result.refused] == [
        ("192.168.60.0/24", "not in its certificate"),
        ("192.168.70.0/24", "not in its certificate"),
    ]


def test_local_addresses_in_a_routed_subnet_are_no_candidates_for_a_direct_path() -> None:
    d = gw("delta", 4, "192.168.50.0/24", locals=(IPv4Interface("192.168.50.1/24"),))
    c = info(
        "charlie", "10.1.1.3", 3, locals=(IPv4Interface("192.168.50.7/24"), IPv4Interface("10.9.0.2/24"))
    )
    view = {d.public_key: d, c.public_key: c}
    hidden = hide_routed_locals(view, run(d, c))
    assert hidden[d.public_key].locals == ()
    assert hidden[c.public_key].locals == (IPv4Interface("10.9.0.2/24"),)
    assert hide_routed_locals(view, NO_SUBNETS) is view
