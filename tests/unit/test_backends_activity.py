"""backends/activity.py: the nftables set a mobile node reads its active peers from."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

from wg_netmanager.backends.activity import Activity, parse_set

SUBNET = IPv4Network("10.1.0.0/16")
# `nft -j list set ip wg_netmanager_mobile_wg0 active` on this machine's nftables 1.0.6
LISTED = json.loads(
    '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"set": {"family": "ip",'
    ' "name": "active", "table": "wg_netmanager_mobile_wg0", "type": "ipv4_addr", "flags": ["timeout"],'
    ' "timeout": 30, "elem": [{"elem": {"val": "10.1.1.3", "expires": 29}}, {"elem": {"val": "10.1.1.4",'
    ' "expires": 12}}, "10.1.1.5", {"elem": {"val": "192.168.1.1"}}, {"elem": {"val": "garbage"}}, 7]}}]}'
)


def test_the_sets_elements_in_the_mesh_subnet_are_the_active_peers() -> None:
    assert parse_set(LISTED, SUBNET) == {IPv4Address(a) for a in ("10.1.1.3", "10.1.1.4", "10.1.1.5")}
    assert parse_set({"nftables": [{"set": {"name": "active"}}]}, SUBNET) == frozenset()  # empty set
    assert parse_set([], SUBNET) == frozenset() and parse_set({"nftables": "x"}, SUBNET) == frozenset()


def test_the_ruleset_counts_packets_in_the_tunnel_with_a_mesh_address_and_replaces_a_stale_table() -> None:
    script = Activity("wg0", SUBNET).ruleset()
    lines = script.splitlines()
    assert lines[:2] == ["table ip wg_netmanager_mobile_wg0 {}", "delete table ip wg_netmanager_mobile_wg0"]
    assert 'oifname "wg0" ip daddr 10.1.0.0/16 update @active { ip daddr }' in script
    assert 'iifname "wg0" ip saddr 10.1.0.0/16 update @active { ip saddr }' in script
    assert "timeout 30s; size 4096;" in script
