"""net.yaml / peer.yaml / command-line parsing: one test per mistake, checking file and field."""

from __future__ import annotations

import base64
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from wg_netmanager.configfile import load_net, load_peer_file
from wg_netmanager.core.config import (
    COMMAND_LINE,
    ConfigError,
    dynamic_port,
    node_settings,
    parse_net,
    parse_peer_file,
    peer_overrides,
)

KEY = base64.b64encode(bytes(range(32))).decode()


def net_data(**network: Any) -> dict[str, Any]:
    return {
        "network": {"sharedKey": KEY, "subnet": "10.1.1.0/24", **network},
        "peers": {
            "beta": {"endPoint": "198.51.100.2:50000", "wgIp": "10.1.1.2"},
            "gamma": {"endPoint": "gamma.example.org:51820", "adminPort": 51000, "wgIp": "10.1.1.3"},
        },
    }


def net_error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_net(data, "net.yaml")
    assert info.value.file == "net.yaml"
    return info.value


def peer_error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_peer_file(data, "peer.yaml")
    assert info.value.file == "peer.yaml"
    return info.value


def with_peer(**spec: Any) -> dict[str, Any]:
    data = net_data()
    data["peers"]["beta"] = spec
    return data


# --- valid input ---


def test_valid_net() -> None:
    net = parse_net(net_data(), "net.yaml")
    assert net.shared_key == bytes(range(32))
    assert net.subnet == IPv4Network("10.1.1.0/24")
    beta, gamma = net.peers
    assert (beta.name, beta.endpoint_host, beta.endpoint_port) == ("beta", "198.51.100.2", 50000)
    assert beta.admin_port == 50001  # default: WireGuard port + 1
    assert beta.wg_ip == IPv4Address("10.1.1.2")
    # DNS names are kept: they are re-resolved later.
    assert gamma.endpoint == "gamma.example.org:51820"
    assert gamma.admin_port == 51000
    assert net.peer_named("gamma") is gamma
    assert net.peer_named("zeta") is None


def test_repr_hides_shared_key() -> None:
    net = parse_net(net_data(), "net.yaml")
    assert KEY not in repr(net)
    assert repr(bytes(range(32))) not in repr(net)


def test_no_peers_is_allowed() -> None:
    data = net_data()
    del data["peers"]
    assert parse_net(data, "net.yaml").peers == ()


def test_error_str_is_one_line() -> None:
    err = ConfigError("net.yaml", "peers.beta.endPoint", "expected host:port")
    assert str(err) == "net.yaml: peers.beta.endPoint: expected host:port"


# --- net.yaml mistakes ---


def test_not_a_mapping() -> None:
    err = net_error(["a", "b"])
    assert (err.field, "must be a mapping") == ("(document)", err.reason[:17])


def test_empty_file() -> None:
    assert "got nothing" in net_error(None).reason


def test_unknown_top_level_field() -> None:
    data = net_data()
    data["peer"] = {}
    err = net_error(data)
    assert err.field == "peer"
    assert "unknown field" in err.reason


def test_unknown_network_field() -> None:
    err = net_error(net_data(sharedkey="x"))
    assert err.field == "network.sharedkey"
    assert "unknown field" in err.reason


def test_unknown_peer_field() -> None:
    err = net_error(with_peer(endPoint="1.2.3.4:5", wgIp="10.1.1.2", endpoint="x"))
    assert err.field == "peers.beta.endpoint"
    assert "unknown field" in err.reason


def test_missing_network() -> None:
    err = net_error({"peers": {}})
    assert (err.field, err.reason) == ("network", "missing")


def test_missing_shared_key() -> None:
    data = net_data()
    del data["network"]["sharedKey"]
    err = net_error(data)
    assert (err.field, err.reason) == ("network.sharedKey", "missing")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(bytes(16)).decode(), "must decode to 32 bytes, got 16"),
        (base64.b64encode(bytes(33)).decode(), "must decode to 32 bytes, got 33"),
        (12345, "must be base64 text"),
    ],
)
def test_bad_shared_key(key: Any, reason: str) -> None:
    err = net_error(net_data(sharedKey=key))
    assert err.field == "network.sharedKey"
    assert reason in err.reason
    assert str(key) not in str(err)  # the secret is never echoed


@pytest.mark.parametrize(
    ("subnet", "reason"),
    [
        ("10.1.1.0", "missing prefix length"),
        ("10.1.1.0/33", "not an IPv4 network"),
        ("fd00::/64", "not an IPv4 network"),
        ("10.1.1.0/31", "too small"),
        (24, "must be an IPv4 network"),
    ],
)
def test_bad_subnet(subnet: Any, reason: str) -> None:
    err = net_error(net_data(subnet=subnet))
    assert err.field == "network.subnet"
    assert reason in err.reason


def test_peers_neither_list_nor_mapping() -> None:
    data = net_data()
    data["peers"] = "beta"
    err = net_error(data)
    assert err.field == "peers"
    assert "must be a list of static nodes" in err.reason and "or a mapping" in err.reason


def test_peer_spec_not_a_mapping() -> None:
    data = net_data()
    data["peers"]["beta"] = "198.51.100.2:50000"
    err = net_error(data)
    assert err.field == "peers.beta"
    assert "must be a mapping" in err.reason


def test_peer_missing_endpoint() -> None:
    err = net_error(with_peer(wgIp="10.1.1.2"))
    assert (err.field, err.reason) == ("peers.beta.endPoint", "missing")


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("198.51.100.2", "expected host:port"),
        (":50000", "expected host:port"),
        ("198.51.100.2:http", "port is not a number"),
        ("198.51.100.2:0", "out of range 1..65535"),
        ("198.51.100.2:65536", "out of range 1..65535"),
        ("300.1.1.1:50000", "not an IPv4 address"),
        ("bad_host!:50000", "not an IPv4 address or DNS name"),
        ("-lead.example.org:50000", "not an IPv4 address or DNS name"),
        ("[2001:db8::1]:50000", "IPv6 endpoints are not supported"),
        ("2001:db8::1:50000", "IPv6 endpoints are not supported"),
        (50000, "must be host:port"),
    ],
)
def test_bad_endpoint(endpoint: Any, reason: str) -> None:
    err = net_error(with_peer(endPoint=endpoint, wgIp="10.1.1.2"))
    assert err.field == "peers.beta.endPoint"
    assert reason in err.reason


@pytest.mark.parametrize(
    ("port", "reason"),
    [(0, "out of range"), (70000, "out of range"), ("50001", "must be a port"), (True, "must be a port")],
)
def test_bad_admin_port(port: Any, reason: str) -> None:
    err = net_error(with_peer(endPoint="198.51.100.2:50000", wgIp="10.1.1.2", adminPort=port))
    assert err.field == "peers.beta.adminPort"
    assert reason in err.reason


def test_admin_port_equal_to_wg_port() -> None:
    err = net_error(with_peer(endPoint="198.51.100.2:50000", wgIp="10.1.1.2", adminPort=50000))
    assert err.field == "peers.beta.adminPort"
    assert "must differ" in err.reason


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.1.1", "not an IPv4 address"),
        ("10.2.0.1", "outside the subnet 10.1.1.0/24"),
        ("10.1.1.0", "network address"),
        ("10.1.1.255", "broadcast address"),
        ("10.1.1.3", "already used by peer gamma"),
    ],
)
def test_bad_peer_wg_ip(ip: str, reason: str) -> None:
    data = net_data()
    data["peers"] = {"gamma": data["peers"]["gamma"], "beta": {"endPoint": "h:1", "wgIp": ip}}
    err = net_error(data)
    assert err.field == "peers.beta.wgIp"
    assert reason in err.reason


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 33, "too long"),
        ("bad name", "invalid name"),
        ("-dash", "invalid name"),
        (7, "quote it"),
    ],
)
def test_bad_peer_name(name: Any, reason: str) -> None:
    data = net_data()
    data["peers"] = {name: {"endPoint": "h:1", "wgIp": "10.1.1.9"}}
    err = net_error(data)
    assert err.field == f"peers.{name}"
    assert reason in err.reason


# --- files ---


def test_load_net_from_file(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(net_data()))
    path.chmod(0o600)
    assert load_net(path).source == str(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_net(tmp_path / "missing.yaml")
    err = info.value
    assert (err.file, err.field) == (str(tmp_path / "missing.yaml"), "(file)")
    assert "cannot read: No such file or directory" in err.reason


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(f"network:\n  sharedKey: {KEY}\n  subnet: [10.1.1.0/24\n")
    with pytest.raises(ConfigError) as info:
        load_net(path)
    err = info.value
    assert err.field.startswith("line ")
    assert "not valid YAML" in err.reason
    assert KEY not in str(err)  # no snippet of the file in the message


def test_duplicate_key(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(
        f"network: {{sharedKey: '{KEY}', subnet: 10.1.1.0/24}}\n"
        "peers:\n  beta: {endPoint: 'h:1', wgIp: 10.1.1.2}\n  beta: {endPoint: 'h:2', wgIp: 10.1.1.3}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_net(path)
    assert info.value.field == "line 4, column 3"
    assert "duplicate key 'beta'" in info.value.reason


def test_world_readable_net_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(net_data()))
    path.chmod(0o644)
    load_net(path)
    assert "chmod 600" in caplog.text
    assert KEY not in caplog.text


def test_load_peer_file(tmp_path: Path) -> None:
    path = tmp_path / "peer.yaml"
    path.write_text("name: alice\nwgIp: 10.1.1.1\nwgInterface: wg7\nwgPort: 40000\n")
    layer = load_peer_file(path)
    assert (layer.name, layer.wg_ip, layer.interface, layer.wg_port) == (
        "alice",
        IPv4Address("10.1.1.1"),
        "wg7",
        40000,
    )
    assert layer.admin_port is None


# --- peer.yaml mistakes ---


def test_peer_file_unknown_field() -> None:
    err = peer_error({"name": "alice", "interface": "wg0"})
    assert err.field == "interface"
    assert "unknown field" in err.reason and "wgInterface" in err.reason


def test_peer_file_not_a_mapping() -> None:
    assert "must be a mapping" in peer_error("alice").reason


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("name", "a/b", "invalid name"),
        ("wgIp", "10.1.1.300", "not an IPv4 address"),
        ("wgInterface", "", "invalid interface name"),
        ("wgInterface", "wg0-and-far-too-long", "too long"),
        ("wgInterface", "wg/0", "invalid interface name"),
        ("wgInterface", "wg 0", "invalid interface name"),
        ("wgInterface", "..", "invalid interface name"),
        ("existingInterface", "no", "must be true or false"),
        ("wgPort", 0, "out of range"),
        ("adminPort", 65536, "out of range"),
        ("backend", "userspace", "unknown backend 'userspace'"),
    ],
)
def test_peer_file_bad_value(field: str, value: Any, reason: str) -> None:
    err = peer_error({field: value})
    assert err.field == field
    assert reason in err.reason


# --- merging ---


def net() -> Any:
    return parse_net(net_data(), "net.yaml")


def test_defaults() -> None:
    cli = peer_overrides(name="alice", wg_ip=IPv4Address("10.1.1.1"))
    s = node_settings(net(), None, cli)
    assert (s.name, s.wg_ip, s.interface) == ("alice", IPv4Address("10.1.1.1"), "wg0")
    port = dynamic_port("alice")
    assert 50000 <= port < 60000 and port != dynamic_port("bob")
    assert (s.wg_port, s.admin_port, s.backend, s.existing_interface) == (port, port + 1, "auto", False)
    assert s.state_dir == Path("/var/lib/wg_netmanager")
    assert s.run_dir == Path("/run/wg_netmanager")


def test_command_line_wins_over_peer_file() -> None:
    peer = parse_peer_file(
        {"name": "alice", "wgIp": "10.1.1.1", "wgPort": 40000, "wgInterface": "wg5"}, "peer.yaml"
    )
    cli = peer_overrides(wg_port=41000)
    s = node_settings(net(), peer, cli, state_dir=Path("/s"), run_dir=Path("/r"), verbose=2)
    assert (s.wg_port, s.admin_port, s.interface) == (41000, 41001, "wg5")
    assert (s.state_dir, s.run_dir, s.verbose) == (Path("/s"), Path("/r"), 2)


def test_static_node_defaults_from_net() -> None:
    s = node_settings(net(), None, peer_overrides(name="gamma"))
    assert (s.wg_ip, s.wg_port, s.admin_port) == (IPv4Address("10.1.1.3"), 51820, 51000)


def test_static_node_explicit_port_keeps_configured_admin_port() -> None:
    s = node_settings(net(), None, peer_overrides(name="gamma", wg_port=40000))
    assert (s.wg_port, s.admin_port) == (40000, 51000)


def test_static_node_wrong_wg_ip() -> None:
    peer = parse_peer_file({"name": "beta", "wgIp": "10.1.1.7"}, "peer.yaml")
    with pytest.raises(ConfigError) as info:
        node_settings(net(), peer)
    err = info.value
    assert (err.file, err.field) == ("peer.yaml", "wgIp")
    assert "differs from 10.1.1.2 given for beta in net.yaml" in err.reason


def test_existing_interface_selects_existing_backend() -> None:
    s = node_settings(
        net(), None, peer_overrides(name="a", wg_ip=IPv4Address("10.1.1.1"), existing_interface=True)
    )
    assert (s.existing_interface, s.backend) == (True, "existing")
    s = node_settings(
        net(), None, peer_overrides(name="a", wg_ip=IPv4Address("10.1.1.1"), backend="existing")
    )
    assert s.existing_interface is True


def merge_error(peer: dict[str, Any] | None, **cli: Any) -> ConfigError:
    layer = parse_peer_file(peer, "peer.yaml") if peer is not None else None
    with pytest.raises(ConfigError) as info:
        node_settings(net(), layer, peer_overrides(**cli))
    return info.value


def test_missing_name_on_command_line() -> None:
    err = merge_error(None, wg_ip=IPv4Address("10.1.1.1"))
    assert (err.file, err.field) == (COMMAND_LINE, "--name")
    assert "missing" in err.reason


def test_missing_name_in_peer_file() -> None:
    err = merge_error({"wgIp": "10.1.1.1"})
    assert (err.file, err.field) == ("peer.yaml", "name")


def test_missing_wg_ip() -> None:
    err = merge_error(None, name="alice")
    assert (err.file, err.field) == (COMMAND_LINE, "--wg-ip")
    assert "missing" in err.reason


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.9.9.9", "outside the subnet 10.1.1.0/24 of net.yaml"),
        ("10.1.1.0", "network address"),
        ("10.1.1.255", "broadcast address"),
        ("10.1.1.2", "already used by peer beta in net.yaml"),
    ],
)
def test_bad_node_wg_ip_in_peer_file(ip: str, reason: str) -> None:
    err = merge_error({"name": "alice", "wgIp": ip})
    assert (err.file, err.field) == ("peer.yaml", "wgIp")
    assert reason in err.reason


def test_bad_node_wg_ip_on_command_line() -> None:
    err = merge_error({"name": "alice", "wgIp": "10.1.1.1"}, wg_ip=IPv4Address("10.1.2.1"))
    assert (err.file, err.field) == (COMMAND_LINE, "--wg-ip")
    assert "outside the subnet" in err.reason


def test_admin_port_equals_wg_port() -> None:
    err = merge_error({"name": "alice", "wgIp": "10.1.1.1", "adminPort": 40000}, wg_port=40000)
    assert (err.file, err.field) == ("peer.yaml", "adminPort")
    assert "both 40000" in err.reason


def test_command_line_values_are_checked() -> None:
    with pytest.raises(ConfigError) as info:
        peer_overrides(interface="x" * 16)
    assert (info.value.file, info.value.field) == (COMMAND_LINE, "--interface")
    with pytest.raises(ConfigError) as info:
        peer_overrides(wg_port=99999)
    assert info.value.field == "--wg-port"


# --- subnet gateways ---


def test_subnets_from_peer_file_and_command_line() -> None:
    peer = parse_peer_file({"name": "delta", "wgIp": "10.1.1.4", "subnets": ["192.168.50.0/24"]}, "peer.yaml")
    assert node_settings(net(), peer).subnets == (IPv4Network("192.168.50.0/24"),)
    cli = peer_overrides(subnets=["172.16.0.0/12", "192.168.60.0/24"])
    assert node_settings(net(), peer, cli).subnets == (
        IPv4Network("172.16.0.0/12"),
        IPv4Network("192.168.60.0/24"),
    )
    assert node_settings(net(), None, peer_overrides(name="a", wg_ip=IPv4Address("10.1.1.1"))).subnets == ()


@pytest.mark.parametrize(
    "value, reason",
    [
        ("192.168.50.1/24", "host bits set in '192.168.50.1/24' (did you mean 192.168.50.0/24?)"),
        (["192.168.50.0"], "missing prefix length in '192.168.50.0' (e.g. 192.168.1.0/24)"),
        (["0.0.0.0/0"], "0.0.0.0/0 is every address, not a subnet"),
        (["10.9.0.0/16", "10.9.0.0/16"], "10.9.0.0/16 given twice"),
        ([f"10.{i}.0.0/16" for i in range(9)], "9 given, at most 8"),
        ([5], "must be an IPv4 network like 192.168.1.0/24, got 5"),
        ({"a": 1}, "must be a list of networks, got {'a': 1}"),
    ],
)
def test_bad_subnets(value: Any, reason: str) -> None:
    err = peer_error({"name": "delta", "subnets": value})
    assert (err.field, err.reason) == ("subnets", reason)


def test_a_subnet_may_not_overlap_the_mesh() -> None:
    cli = peer_overrides(name="a", wg_ip=IPv4Address("10.1.1.1"), subnets=["10.0.0.0/8"])
    with pytest.raises(ConfigError) as info:
        node_settings(net(), None, cli)
    assert (
        str(info.value)
        == "command line: --subnet: 10.0.0.0/8 overlaps the mesh subnet 10.1.1.0/24 of net.yaml"
    )


def test_routed_subnets_in_net_yaml() -> None:
    assert parse_net(net_data(), "net.yaml").routed_subnets is None
    cfg = parse_net(net_data(routedSubnets=["8.8.8.0/24", "192.168.0.0/16"]), "net.yaml")
    assert cfg.routed_subnets == (IPv4Network("8.8.8.0/24"), IPv4Network("192.168.0.0/16"))
    err = net_error(net_data(routedSubnets=["8.8.8.1/24"]))
    assert (err.field, err.reason) == (
        "network.routedSubnets",
        "host bits set in '8.8.8.1/24' (did you mean 8.8.8.0/24?)",
    )
    err = net_error(net_data(routedSubnets=["0.0.0.0/0"]))
    assert err.reason == "0.0.0.0/0 is every address, not a subnet"
