"""module_utils/mesh_validate.py and the mesh_validate module."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import (
    mesh_validate as mv,
)

from wg_netmanager.core import checks as agent_checks
from wg_netmanager.core import config as agent_config

SUBNET = "10.1.1.0/24"


def node(host: str, ip: str | None, **extra: Any) -> dict[str, Any]:
    return {"host": host, "wg_ip": ip, **extra}


def good_nodes() -> list[dict[str, Any]]:
    return [
        node("alpha", "10.1.1.1"),
        node("beta", "10.1.1.2", static_endpoint="198.51.100.2:50000"),
        node(
            "charlie",
            "10.1.1.3",
            static_endpoint="mesh.example.org:51820",
            admin_port=6000,
        ),
    ]


def problems(subnet: str, nodes: list[dict[str, Any]]) -> list[str]:
    return mv.validate_mesh(subnet, nodes)["problems"]


def test_valid_mesh_gives_static_peers_and_normalised_nodes() -> None:
    result = mv.validate_mesh(SUBNET, good_nodes())
    assert result["problems"] == []
    assert result["static_peers"] == {
        "beta": {
            "endPoint": "198.51.100.2:50000",
            "adminPort": 50001,
            "wgIp": "10.1.1.2",
        },
        "charlie": {
            "endPoint": "mesh.example.org:51820",
            "adminPort": 6000,
            "wgIp": "10.1.1.3",
        },
    }
    alpha = result["nodes"][0]
    assert alpha == {
        "host": "alpha",
        "name": "alpha",
        "wg_ip": "10.1.1.1",
        "static_endpoint": None,
        "admin_port": None,
        "interface": "wg0",
        "static": False,
        "subnets": [],
        "exit_node": False,
        "use_exit_node": None,
        "mode": "normal",
    }


def test_name_defaults_to_host_and_can_differ() -> None:
    nodes = good_nodes()
    nodes[1]["name"] = "gw1"
    result = mv.validate_mesh(SUBNET, nodes)
    assert list(result["static_peers"]) == ["gw1", "charlie"]
    assert result["nodes"][1]["host"] == "beta"


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        ("10.1.1.0", None),  # a single address is a /32: no room
        ("nonsense", "wg_subnet 'nonsense' is not an IPv4 CIDR"),
        (
            "10.1.1.1/24",
            "wg_subnet 10.1.1.1/24 has host bits set (did you mean 10.1.1.0/24?)",
        ),
        ("fd00::/64", "wg_subnet fd00::/64 is not IPv4"),
        ("10.1.1.0/31", "wg_subnet 10.1.1.0/31 leaves no room for nodes"),
        ("", "wg_subnet is missing"),
    ],
)
def test_bad_subnet(subnet: str, expected: str | None) -> None:
    found = problems(subnet, good_nodes())
    assert any(p.startswith(expected or "wg_subnet 10.1.1.0 leaves no room") for p in found)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        (None, "host charlie: wg_ip is missing"),
        ("", "host charlie: wg_ip is missing"),
        ("10.1.1", "host charlie: wg_ip '10.1.1' is not an IPv4 address"),
        ("fd00::1", "host charlie: wg_ip 'fd00::1' is not an IPv4 address"),
        ("10.9.9.9", "host charlie: wg_ip 10.9.9.9 is outside wg_subnet 10.1.1.0/24"),
        (
            "10.1.1.0",
            "host charlie: wg_ip 10.1.1.0 is the network address of wg_subnet",
        ),
        (
            "10.1.1.255",
            "host charlie: wg_ip 10.1.1.255 is the broadcast address of wg_subnet",
        ),
    ],
)
def test_bad_wg_ip(ip: str | None, expected: str) -> None:
    nodes = good_nodes()
    nodes[2]["wg_ip"] = ip
    found = problems(SUBNET, nodes)
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_duplicates_name_both_hosts() -> None:
    nodes = good_nodes()
    nodes[2]["wg_ip"] = "10.1.1.1"
    nodes[1]["name"] = "alpha"
    found = problems(SUBNET, nodes)
    assert "host beta: wg_name alpha is also used by host alpha" in found
    assert "host charlie: wg_ip 10.1.1.1 is also used by host alpha" in found


def test_duplicate_endpoint_and_host() -> None:
    nodes = good_nodes()
    nodes.append(node("beta", "10.1.1.4", name="beta2", static_endpoint="198.51.100.2:50000"))
    found = problems(SUBNET, nodes)
    assert "host beta: inventory host beta is also used by host beta" in found
    assert "host beta: wg_static_endpoint 198.51.100.2:50000 is also used by host beta" in found


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("198.51.100.2", "is not host:port"),
        (":50000", "is not host:port"),
        ("198.51.100.2:0", "port is out of range 1-65535"),
        ("198.51.100.2:70000", "port is out of range 1-65535"),
        ("198.51.100.2:http", "port is not a port number"),
        ("bad_host!:50000", "'bad_host!' is not a valid host name or IPv4"),
        ("-lead.example.org:50000", "is not a valid host name"),
        ("300.1.1.1:50000", "'300.1.1.1' is not a valid host name or IPv4"),
        ("[fd00::1]:50000", "IPv6 endpoints are not supported"),
    ],
)
def test_bad_endpoint(endpoint: str, expected: str) -> None:
    nodes = good_nodes()
    nodes[1]["static_endpoint"] = endpoint
    found = problems(SUBNET, nodes)
    assert len(found) == 1, found
    assert found[0].startswith(f"host beta: wg_static_endpoint {endpoint!r}")
    assert expected in found[0]


@pytest.mark.parametrize("good", ["gw.example.org.:1", "a-b.c:65535", "10.0.0.1:51820"])
def test_good_endpoints(good: str) -> None:
    nodes = good_nodes()
    nodes[1]["static_endpoint"] = good
    nodes[1]["admin_port"] = 2000
    assert problems(SUBNET, nodes) == []


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("abc", "host beta: wg_admin_port 'abc' is not a port number"),
        (True, "host beta: wg_admin_port True is not a port number"),
        (0, "host beta: wg_admin_port 0 is out of range 1-65535"),
        ("65536", "host beta: wg_admin_port '65536' is out of range 1-65535"),
        (50000, "host beta: wg_admin_port 50000 is the port of wg_static_endpoint"),
    ],
)
def test_bad_admin_port(port: Any, expected: str) -> None:
    nodes = good_nodes()
    nodes[1]["admin_port"] = port
    assert problems(SUBNET, nodes) == [expected]


def test_admin_port_string_is_accepted_and_default_is_the_agents() -> None:
    nodes = good_nodes()
    nodes[1]["admin_port"] = "7000"
    assert mv.validate_mesh(SUBNET, nodes)["static_peers"]["beta"]["adminPort"] == 7000
    nodes[1]["admin_port"] = None
    for port in (1, 51820, 65534, 65535):
        nodes[1]["static_endpoint"] = f"198.51.100.2:{port}"
        result = mv.validate_mesh(SUBNET, nodes)
        assert result["problems"] == []
        assert result["static_peers"]["beta"]["adminPort"] == agent_config.default_admin_port(port)


def test_no_static_node() -> None:
    nodes = [node("alpha", "10.1.1.1"), node("beta", "10.1.1.2")]
    assert problems(SUBNET, nodes) == ["no static node: at least one host needs wg_static_endpoint"]


def test_no_nodes() -> None:
    assert problems(SUBNET, []) == ["no nodes: the list of mesh hosts is empty"]


def test_bad_name_and_interface() -> None:
    nodes = good_nodes()
    nodes[0]["name"] = "al pha"
    nodes[0]["interface"] = "wg-interface-too-long"
    assert problems(SUBNET, nodes) == [
        "host alpha: wg_name 'al pha' is not a valid node name",
        "host alpha: wg_interface 'wg-interface-too-long' is not a valid interface name",
    ]


def test_every_problem_is_listed_at_once() -> None:
    nodes = [
        node("alpha", "10.9.9.9"),
        node("beta", None, static_endpoint="nope"),
        node("charlie", "10.1.1.3", admin_port="x"),
    ]
    found = problems("10.1.1.0/24", nodes)
    assert found == [
        "host alpha: wg_ip 10.9.9.9 is outside wg_subnet 10.1.1.0/24",
        "host beta: wg_ip is missing",
        "host beta: wg_static_endpoint 'nope' is not host:port",
        "host charlie: wg_admin_port 'x' is not a port number",
        "no static node: at least one host needs wg_static_endpoint",
    ]


def test_module_success_and_failure(run_adhoc: Any) -> None:
    """The real module through `ansible localhost -m` (argument spec, exit/fail JSON)."""
    result, _ = run_adhoc("wg_netmanager.mesh.mesh_validate", {"subnet": SUBNET, "nodes": good_nodes()})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["static_peers"]["beta"]["adminPort"] == 50001
    assert [n["host"] for n in result["nodes"]] == ["alpha", "beta", "charlie"]

    bad = good_nodes()
    bad[2]["wg_ip"] = "10.9.9.9"
    bad[0]["wg_ip"] = "10.1.1.2"
    result, proc = run_adhoc("wg_netmanager.mesh.mesh_validate", {"subnet": SUBNET, "nodes": bad}, "--check")
    assert result["failed"] is True
    assert proc.returncode != 0
    assert "host charlie: wg_ip 10.9.9.9 is outside wg_subnet 10.1.1.0/24" in result["msg"]
    assert "host beta: wg_ip 10.1.1.2 is also used by host alpha" in result["msg"]
    assert len(result["problems"]) == 2


def test_subnet_gateways() -> None:
    nodes = good_nodes()
    nodes[0]["subnets"] = ["192.168.50.0/24", "172.16.0.0/12"]
    result = mv.validate_mesh(SUBNET, nodes)
    assert result["problems"] == []
    assert result["nodes"][0]["subnets"] == ["192.168.50.0/24", "172.16.0.0/12"]


@pytest.mark.parametrize(
    ("subnets", "expected"),
    [
        ("192.168.50.0/24", "wg_subnets must be a list of CIDRs such as ['192.168.50.0/24']"),
        (
            ["192.168.50.1/24"],
            "wg_subnets: 192.168.50.1/24 has host bits set (did you mean 192.168.50.0/24?)",
        ),
        (["192.168.50.0"], "wg_subnets: '192.168.50.0' needs a prefix length, such as 192.168.50.0/24"),
        (["nope"], "wg_subnets: 'nope' is not an IPv4 CIDR such as 192.168.50.0/24"),
        (["10.0.0.0/8"], "wg_subnets: 10.0.0.0/8 overlaps wg_subnet 10.1.1.0/24"),
        (["0.0.0.0/0"], "wg_subnets: 0.0.0.0/0 is every address, not a subnet"),
        (["10.9.0.0/16", "10.9.0.0/16"], "wg_subnets: 10.9.0.0/16 is listed twice"),
        ([f"172.16.{i}.0/24" for i in range(9)], "wg_subnets lists 9, at most 8"),
    ],
)
def test_bad_subnets(subnets: Any, expected: str) -> None:
    nodes = good_nodes()
    nodes[0]["subnets"] = subnets
    assert problems(SUBNET, nodes) == [f"host alpha: {expected}"]


def test_overlapping_subnets_of_two_hosts_name_both() -> None:
    nodes = good_nodes()
    nodes[0]["subnets"] = ["192.168.0.0/16"]
    nodes[2]["subnets"] = ["192.168.50.0/24"]
    assert problems(SUBNET, nodes) == [
        "host charlie: wg_subnets 192.168.50.0/24 overlaps 192.168.0.0/16 of host alpha"
        " (the nodes would route neither)"
    ]


def test_exit_node_used_by_another_node() -> None:
    nodes = good_nodes()
    nodes[1]["exit_node"] = True
    nodes[0]["use_exit_node"] = "beta"
    result = mv.validate_mesh(SUBNET, nodes)
    assert result["problems"] == []
    assert (result["nodes"][0]["use_exit_node"], result["nodes"][1]["exit_node"]) == ("beta", True)


@pytest.mark.parametrize(
    ("exit_host", "use", "ca", "expected"),
    [
        (None, "gamma", False, "wg_use_exit_node gamma: no node of the mesh has that name"),
        (None, "beta", False, "wg_use_exit_node beta: host beta does not offer an exit (wg_exit_node)"),
        (
            2,
            "delta",
            False,
            "wg_use_exit_node delta: host delta has no wg_static_endpoint:"
            " without a CA only a static node may be an exit",
        ),
        (1, "alpha", False, "wg_use_exit_node alpha: this node itself"),
    ],
)
def test_bad_use_exit_node(exit_host: int | None, use: str, ca: bool, expected: str) -> None:
    nodes = [*good_nodes(), node("delta", "10.1.1.4")]
    if exit_host is not None:
        nodes[3 if use == "delta" else 1]["exit_node"] = True
    nodes[0]["use_exit_node"] = use
    assert mv.validate_mesh(SUBNET, nodes, ca)["problems"] == [f"host alpha: {expected}"]


def test_with_a_ca_any_node_may_be_the_exit_and_an_exit_uses_none() -> None:
    nodes = [*good_nodes(), node("delta", "10.1.1.4", exit_node=True)]
    nodes[0]["use_exit_node"] = "delta"
    assert mv.validate_mesh(SUBNET, nodes, ca=True)["problems"] == []
    nodes[3]["use_exit_node"] = "alpha"
    assert mv.validate_mesh(SUBNET, nodes, ca=True)["problems"] == [
        "host delta: wg_use_exit_node alpha: a node with wg_exit_node uses none"
    ]


def test_a_mobile_node_is_kept_and_a_static_one_is_refused() -> None:
    assert mv.MODES == agent_checks.MODES
    nodes = good_nodes()
    nodes[0]["mode"] = "mobile"
    nodes[2]["mode"] = "normal"
    result = mv.validate_mesh(SUBNET, nodes)
    assert result["problems"] == []
    assert [n["mode"] for n in result["nodes"]] == ["mobile", "normal", "normal"]
    nodes[1]["mode"] = "mobile"
    assert problems(SUBNET, nodes) == [
        "host beta: wg_mode mobile: a node with wg_static_endpoint is a static node and cannot be mobile"
    ]


def test_unknown_mode() -> None:
    nodes = good_nodes()
    nodes[0]["mode"] = "metered"
    assert problems(SUBNET, nodes) == ["host alpha: wg_mode 'metered' is not one of normal, mobile"]


def test_module_takes_mode(run_adhoc: Any) -> None:
    nodes = good_nodes()
    nodes[0]["mode"] = "mobile"
    result, _ = run_adhoc("wg_netmanager.mesh.mesh_validate", {"subnet": SUBNET, "nodes": nodes})
    assert not result.get("failed"), result
    assert [n["mode"] for n in result["nodes"]] == ["mobile", "normal", "normal"]
    nodes[1]["mode"] = "mobile"
    result, _ = run_adhoc("wg_netmanager.mesh.mesh_validate", {"subnet": SUBNET, "nodes": nodes})
    assert result["problems"] == [
        "host beta: wg_mode mobile: a node with wg_static_endpoint is a static node and cannot be mobile"
    ]
