"""net.yaml's trust settings: pinned static node keys, the network CA, revoked serials."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_config_original import original

from wg_netmanager.core.config import ConfigError, add_static_peers, parse_net

PUB = base64.b64encode(bytes(range(1, 33))).decode()


def net_error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_net(data, "net.yaml")
    return info.value


def test_a_static_nodes_key_can_be_pinned() -> None:
    data = original()
    data["peers"][0]["publicKey"] = PUB
    net = parse_net(data, "net.yaml")
    assert net.peers[0].public_key == bytes(range(1, 33)) and net.peers[1].public_key is None
    assert net.mode() == "shared key; 1 of 2 static node keys pinned"
    extra = add_static_peers(net, [f"endPoint=h:1,wgIp=10.1.1.9,publicKey={PUB}"])
    assert extra.peers[2].public_key == bytes(range(1, 33))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("!!!!", "not base64"),
        (base64.b64encode(bytes(31)).decode(), "32 bytes"),
        (base64.b64encode(bytes(32)).decode(), "32 bytes"),
        (5, "must be a WireGuard public key"),
    ],
)
def test_bad_pinned_key(value: Any, reason: str) -> None:
    data = original()
    data["peers"][1]["publicKey"] = value
    err = net_error(data)
    assert (err.field, reason in err.reason) == ("peers[1].publicKey", True)


def test_network_ca_and_revoked_serials() -> None:
    data = original()
    data["network"] |= {"caPublicKey": PUB, "revokedCerts": ["00000000000000ab", "ff"]}
    net = parse_net(data, "net.yaml")
    assert net.ca_public_key == bytes(range(1, 33)) and net.revoked == {0xAB, 0xFF}
    assert net.mode() == f"network CA {PUB}, 2 revoked"


@pytest.mark.parametrize(
    ("network", "field"),
    [
        ({"caPublicKey": "short"}, "network.caPublicKey"),
        ({"revokedCerts": "ab"}, "network.revokedCerts"),
        ({"revokedCerts": [171]}, "network.revokedCerts[0]"),
        ({"revokedCerts": ["ab", "xyz"]}, "network.revokedCerts[1]"),
    ],
)
def test_bad_ca_settings(network: dict[str, Any], field: str) -> None:
    data = original()
    data["network"] |= network
    assert net_error(data).field == field


def test_previous_shared_key_during_a_rotation() -> None:
    data = original()
    old = data["network"]["sharedKey"]
    new = base64.b64encode(bytes(range(5, 37))).decode()
    data["network"] |= {"sharedKey": new, "previousSharedKey": old}
    net = parse_net(data, "net.yaml")
    assert net.previous_key == base64.b64decode(old) and net.shared_key == base64.b64decode(new)
    assert net.mode().endswith("; rotating (previousSharedKey accepted)")
    assert old not in repr(net) and new not in repr(net)
    data["network"]["previousSharedKey"] = new
    err = net_error(data)
    assert (err.field, err.reason) == ("network.previousSharedKey", "is the same as sharedKey")
    data["network"]["previousSharedKey"] = "short"
    assert net_error(data).field == "network.previousSharedKey"
