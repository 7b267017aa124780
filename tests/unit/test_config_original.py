"""The original Rust wg_netmanager's net.yaml and peer.yaml, and static nodes given on the
command line: every accepted and every rejected form, with file and field."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from wg_netmanager.configfile import default_net_file, default_peer_file, load_net, load_peer_file
from wg_netmanager.core.config import (
    COMMAND_LINE,
    ConfigError,
    NetConfig,
    add_static_peers,
    node_settings,
    parse_net,
    peer_overrides,
)

# Verbatim from the original's README (its key is a public example).
ORIGINAL_NET = """\
network:
  sharedKey: YDUBM6FhERePZ4gPlxzAbCN7K61BPjy7HApWYL+P128=
  subnet: 10.1.1.0/8

peers:
  - endPoint: 192.168.1.70:50000
    adminPort: 55555
    wgIp: 10.1.1.1
  - endPoint: 192.168.1.212:50000
    adminPort: 55555
    wgIp: 10.1.1.2
"""

ORIGINAL_PEER = """\
name: alice
wgIp: 10.1.1.1
wgInterface: wg0
existingInterface: false
"""


def original() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ORIGINAL_NET)
    return data


def net_error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_net(data, "net.yaml")
    assert info.value.file == "net.yaml"
    return info.value


def node(net: NetConfig, **values: Any) -> Any:
    return node_settings(net, None, peer_overrides(**values))


# --- accepted ---


def test_original_net_yaml_is_accepted() -> None:
    net = parse_net(original(), "net.yaml")
    assert net.subnet == IPv4Network("10.0.0.0/8")
    assert net.warnings == (
        "net.yaml: network.subnet: warning: host bits set in '10.1.1.0/8', using 10.0.0.0/8",
    )
    first, second = net.peers
    assert (first.endpoint, first.admin_port, first.wg_ip) == (
        "192.168.1.70:50000",
        55555,
        IPv4Address("10.1.1.1"),
    )
    assert (second.endpoint, second.wg_ip) == ("192.168.1.212:50000", IPv4Address("10.1.1.2"))
    # stable names, from the address (not the position in the list)
    assert (first.name, second.name) == ("static-10-1-1-1", "static-10-1-1-2")
    assert not first.named and not second.named


def test_a_clean_subnet_has_no_warning() -> None:
    data = original()
    data["network"]["subnet"] = "10.0.0.0/8"
    assert parse_net(data, "net.yaml").warnings == ()


def test_list_entries_may_be_named_and_reordered() -> None:
    data = original()
    data["peers"][1]["name"] = "bob"
    data["peers"].reverse()
    net = parse_net(data, "net.yaml")
    assert [(p.name, p.named) for p in net.peers] == [("bob", True), ("static-10-1-1-1", False)]
    assert net.peer_named("bob") is net.peers[0]
    assert net.peer_named("static-10-1-1-1") is None  # a placeholder is no name to claim


def test_node_at_an_unnamed_entrys_address_is_that_static_node() -> None:
    net = parse_net(original(), "net.yaml")
    alice = node(net, name="alice", wg_ip="10.1.1.1", interface="wg0")
    # the original: alice started with -a 10.1.1.1 is the static node at 192.168.1.70
    assert (alice.name, alice.wg_port, alice.admin_port) == ("alice", 50000, 55555)
    bob = node(net, name="bob", wg_ip="10.1.1.16")
    assert bob.wg_ip == IPv4Address("10.1.1.16") and bob.admin_port == bob.wg_port + 1


def test_static_node_without_a_name_anywhere_takes_the_placeholder() -> None:
    net = parse_net(original(), "net.yaml")
    assert node(net, wg_ip="10.1.1.2").name == "static-10-1-1-2"


def test_original_peer_yaml(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").write_text(ORIGINAL_NET)
    (tmp_path / "peer.yaml").write_text(ORIGINAL_PEER)
    net = load_net(tmp_path / "net.yaml")
    settings = node_settings(net, load_peer_file(tmp_path / "peer.yaml"))
    assert (settings.name, str(settings.wg_ip), settings.interface) == ("alice", "10.1.1.1", "wg0")
    assert settings.existing_interface is False and settings.wg_port == 50000


def test_default_files_as_the_original_read_them(tmp_path: Path) -> None:
    assert default_net_file(tmp_path) == tmp_path / "net.yaml"  # neither exists: ours is named
    assert default_peer_file(tmp_path) is None
    (tmp_path / "network.yaml").write_text(ORIGINAL_NET)
    (tmp_path / "peer.yaml").write_text(ORIGINAL_PEER)
    assert default_net_file(tmp_path) == tmp_path / "network.yaml"
    assert default_peer_file(tmp_path) == tmp_path / "peer.yaml"
    (tmp_path / "net.yaml").write_text(ORIGINAL_NET)
    assert default_net_file(tmp_path) == tmp_path / "net.yaml"  # ours wins when both exist


# --- rejected ---


@pytest.mark.parametrize(
    ("peers", "field", "reason"),
    [
        (["192.168.1.70:50000"], "peers[0]", "must be a mapping with endPoint, wgIp"),
        ([None], "peers[0]", "got nothing"),
        ([{"endPoint": "192.168.1.70:50000"}], "peers[0].wgIp", "missing"),
        ([{"wgIp": "10.1.1.1"}], "peers[0].endPoint", "missing"),
        ([{"endPoint": "h:1", "wgIp": "10.1.1.1", "endpoint": "x"}], "peers[0].endpoint", "unknown field"),
        (
            [{"endPoint": "a:1", "wgIp": "10.1.1.1"}, {"endPoint": "b:1", "wgIp": "10.1.1.1"}],
            "peers[1].wgIp",
            "10.1.1.1 is already used by peer static-10-1-1-1",
        ),
        (
            [{"endPoint": "a:1", "wgIp": "10.1.1.1"}, {"endPoint": "a:1", "wgIp": "10.1.1.2"}],
            "peers[1].endPoint",
            "a:1 is already peer static-10-1-1-1's",
        ),
        (
            [
                {"endPoint": "a:1", "wgIp": "10.1.1.1", "name": "x"},
                {"endPoint": "b:1", "wgIp": "10.1.1.2", "name": "x"},
            ],
            "peers[1].name",
            "x is already another peer's name",
        ),
        ([{"endPoint": "a:1", "wgIp": "10.1.1.1", "name": "bad name"}], "peers[0].name", "invalid name"),
        ([{"endPoint": "a:1", "wgIp": "192.168.1.1"}], "peers[0].wgIp", "outside the subnet"),
        (
            [{"endPoint": "a:1", "wgIp": "10.1.1.1", "adminPort": "55555"}],
            "peers[0].adminPort",
            "must be a port",
        ),
    ],
)
def test_mixed_up_list_forms(peers: Any, field: str, reason: str) -> None:
    data = original()
    data["peers"] = peers
    err = net_error(data)
    assert err.field == field
    assert reason in err.reason
    assert "\n" not in str(err)


def test_mapping_form_rejects_a_shared_endpoint() -> None:
    data = original()
    data["peers"] = {
        "a": {"endPoint": "h:1", "wgIp": "10.1.1.1"},
        "b": {"endPoint": "h:1", "wgIp": "10.1.1.2"},
    }
    err = net_error(data)
    assert (err.field, err.reason) == ("peers.b.endPoint", "h:1 is already peer a's")


def test_named_entry_keeps_its_name() -> None:
    data = original()
    data["peers"][0]["name"] = "alpha"
    net = parse_net(data, "net.yaml")
    with pytest.raises(ConfigError) as info:
        node(net, name="alice", wg_ip="10.1.1.1")
    assert info.value.field == "--wg-ip"
    assert info.value.reason.startswith("10.1.1.1 is already used by peer alpha")
    assert node(net, name="alpha").wg_ip == IPv4Address("10.1.1.1")


# --- static nodes on the command line ---


def test_static_peers_from_the_command_line() -> None:
    net = add_static_peers(
        parse_net(original(), "net.yaml"),
        [
            "endPoint=vps.example.org:51820,wgIp=10.1.1.3",
            "name=gw,wgIp=10.1.1.4,endPoint=198.51.100.4:50000,adminPort=6000",
        ],
    )
    third, fourth = net.peers[2:]
    assert (third.name, third.named, third.endpoint, third.admin_port) == (
        "static-10-1-1-3",
        False,
        "vps.example.org:51820",
        51821,
    )
    assert (fourth.name, fourth.admin_port, fourth.wg_ip) == ("gw", 6000, IPv4Address("10.1.1.4"))
    assert node(net, name="gw").wg_port == 50000


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ("198.51.100.4:50000", "--static-peer[0]", "expected KEY=VALUE items"),
        ("endPoint=198.51.100.4:50000", "--static-peer[0].wgIp", "missing"),
        ("endPoint=h:1,wgIp=10.1.1.9,port=3", "--static-peer[0].port", "unknown field"),
        ("endPoint=h:1,wgIp=10.1.1.9,wgIp=10.1.1.8", "--static-peer[0].wgIp", "given twice"),
        ("endPoint=h:1,wgIp=10.1.1.1", "--static-peer[0].wgIp", "already used by peer static-10-1-1-1"),
        ("endPoint=192.168.1.70:50000,wgIp=10.1.1.9", "--static-peer[0].endPoint", "already peer"),
        ("endPoint=h:1,wgIp=10.1.1.9,adminPort=x", "--static-peer[0].adminPort", "must be a port"),
        ("endPoint=h:1,wgIp=172.16.0.1", "--static-peer[0].wgIp", "outside the subnet"),
        ("endPoint=h,wgIp=10.1.1.9", "--static-peer[0].endPoint", "expected host:port"),
    ],
)
def test_bad_static_peer_option(spec: str, field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        add_static_peers(parse_net(original(), "net.yaml"), [spec])
    assert (info.value.file, info.value.field) == (COMMAND_LINE, field)
    assert reason in info.value.reason
