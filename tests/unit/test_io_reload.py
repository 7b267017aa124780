"""What a reload (SIGHUP) applies while running and what only a restart does
(io/reconfig.py `needs_restart`): the static nodes may change; this node's own settings and
the subnet may not."""

from __future__ import annotations

from typing import Any, Optional

import pytest
import yaml

from wg_netmanager.core.config import node_settings, parse_net, peer_overrides
from wg_netmanager.io.reconfig import needs_restart

NET = """\
network:
  sharedKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
  subnet: 10.1.1.0/24
peers:
  beta:
    endPoint: 198.51.100.2:50000
    wgIp: 10.1.1.2
"""


def config(net_edit: Optional[dict[str, Any]] = None, **peer: Any) -> tuple[Any, Any]:
    data = yaml.safe_load(NET)
    for key, value in (net_edit or {}).items():
        data[key] = value
    net = parse_net(data, "net.yaml")
    values = {"name": "alice", "wg_ip": "10.1.1.1", **peer}
    return net, node_settings(net, None, peer_overrides(**values))


def test_static_nodes_added_or_moved_need_no_restart() -> None:
    old, was = config()
    peers = {
        "beta": {"endPoint": "198.51.100.9:50000", "wgIp": "10.1.1.2"},
        "gamma": {"endPoint": "gamma.example:50000", "wgIp": "10.1.1.5"},
    }
    new, now = config({"peers": peers})
    assert new.peers != old.peers
    assert needs_restart(old, was, new, now) is None


@pytest.mark.parametrize(
    ("net_edit", "peer", "why"),
    [
        ({"network": {"sharedKey": yaml.safe_load(NET)["network"]["sharedKey"], "subnet": "10.1.0.0/16"}}, {},
         "subnet changed"),
        (None, {"wg_port": 51999}, "wg_port"),
        (None, {"admin_port": 51998}, "admin_port changed"),
        (None, {"interface": "wg7"}, "interface changed"),
        (None, {"name": "alicia"}, "name"),
    ],
)  # fmt: skip
def test_what_only_a_restart_applies(net_edit: Any, peer: dict[str, Any], why: str) -> None:
    old, was = config()
    new, now = config(net_edit, **peer)
    reason = needs_restart(old, was, new, now)
    assert reason is not None and why in reason


def test_leaves_added_or_removed_need_no_restart() -> None:
    old, was = config()
    leaf = {"publicKey": "TU1NTU1NTU1NTU1NTU1NTU1NTU1NTU1NTU1NTU1NTU0=", "wgIp": "10.1.1.50", "home": "beta"}
    new, now = config({"leaves": {"phone": leaf}})
    assert new.leaves != old.leaves
    assert needs_restart(old, was, new, now) is None
    assert needs_restart(new, now, old, was) is None
