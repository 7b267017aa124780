# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Check the leaves (inventory group wg_leaves) against the mesh they hang from.

A leaf is a WireGuard peer without the agent (a phone, a tablet, a router with wg-quick):
one static node, its home, holds it as a WireGuard peer, and every other node routes its
address to that home. Pure logic, like mesh_validate: every problem is collected, each one
naming the inventory host and the variable.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible_collections.wg_netmanager.mesh.plugins.module_utils.mesh_validate import (
    _NODE_NAME,
    VAR_ENDPOINT,
    VAR_IP,
    VAR_NAME,
    _blank,
    _check_ip,
    parse_cidr,
    parse_subnet,
    valid_hostname,
)

VAR_HOME = "wg_leaf_home"
VAR_ALLOWED = "wg_leaf_allowed_ips"
VAR_DNS = "wg_leaf_dns"
VAR_KEEPALIVE = "wg_leaf_keepalive"
DEFAULT_KEEPALIVE = 25


def _allowed_ips(raw: Any, net: ipaddress.IPv4Network | None) -> tuple[list[str], list[str]]:
    """What the leaf routes into its tunnel (wg-quick AllowedIPs): default the mesh's subnet."""
    if raw is None:
        return ([str(net)] if net is not None else []), []
    if isinstance(raw, str) or not isinstance(raw, list) or not raw:
        return [], [f"{VAR_ALLOWED} must be a non-empty list of CIDRs such as ['10.1.1.0/24']"]
    found: list[str] = []
    problems: list[str] = []
    for item in raw:
        text = str(item).strip()
        cidr, problem = parse_cidr(text, VAR_ALLOWED, "10.1.1.0/24 or 0.0.0.0/0", 32, ipv6=True)
        if problem is not None:
            problems.append(problem)
        elif str(cidr) in found:
            problems.append(f"{VAR_ALLOWED}: {text} is listed twice")
        else:
            found.append(str(cidr))
    return found, problems


def _dns(raw: Any) -> tuple[list[str], list[str]]:
    """wg-quick DNS: resolver addresses, and search domains (names)."""
    if raw is None:
        return [], []
    if isinstance(raw, str) or not isinstance(raw, list):
        return [], [f"{VAR_DNS} must be a list such as ['10.1.1.1'] (addresses or search domains)"]
    found: list[str] = []
    problems: list[str] = []
    for item in raw:
        text = str(item).strip()
        try:
            found.append(str(ipaddress.ip_address(text)))
            continue
        except ValueError:
            pass
        if text and valid_hostname(text):
            found.append(text)
        else:
            problems.append(f"{VAR_DNS}: {text!r} is neither an IP address nor a domain name")
    return found, problems


def _keepalive(raw: Any) -> tuple[int, str | None]:
    if raw is None:
        return DEFAULT_KEEPALIVE, None
    digits = isinstance(raw, str) and raw.strip().isdigit()
    if isinstance(raw, bool) or not (isinstance(raw, int) or digits):
        return DEFAULT_KEEPALIVE, f"{VAR_KEEPALIVE} {raw!r} is not a number of seconds"
    seconds = int(raw)
    if seconds > 65535:
        return DEFAULT_KEEPALIVE, f"{VAR_KEEPALIVE} {seconds} is out of range 0-65535 (0: off)"
    return seconds, None


def _home(raw: Any, nodes: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The static node that holds the leaf: a host of wg_mesh; default the first static one."""
    statics = [node for node in nodes if node.get("static")]
    if _blank(raw):
        if not statics:
            return None, f"{VAR_HOME}: no static node in wg_mesh to be its home (one needs {VAR_ENDPOINT})"
        return statics[0], None
    host = str(raw).strip()
    for node in nodes:
        if node["host"] == host:
            if not node.get("static"):
                return None, f"{VAR_HOME} {host} is not a static node (it has no {VAR_ENDPOINT})"
            return node, None
    by_name = [node["host"] for node in nodes if node["name"] == host]
    hint = f" (did you mean host {by_name[0]}?)" if by_name else ""
    return None, f"{VAR_HOME} {host} is not a host of wg_mesh{hint}"


def _check_leaf(
    leaf: dict[str, Any], net: ipaddress.IPv4Network | None, nodes: list[dict[str, Any]], problems: list[str]
) -> dict[str, Any]:
    host = str(leaf.get("host") or "").strip() or "?"
    found: list[str | None] = []

    name = host if _blank(leaf.get("name")) else str(leaf["name"]).strip()
    if not _NODE_NAME.match(name):
        found.append(f"{VAR_NAME} {name!r} is not a valid name (letters, digits, '_', '.', '-')")

    wg_ip, err = _check_ip(leaf.get("wg_ip"), net)
    found.append(err)

    home, err = _home(leaf.get("home"), nodes)
    found.append(err)

    allowed, errs = _allowed_ips(leaf.get("allowed_ips"), net)
    found += errs
    dns, errs = _dns(leaf.get("dns"))
    found += errs
    keepalive, err = _keepalive(leaf.get("keepalive"))
    found.append(err)

    problems.extend(f"host {host}: {text}" for text in found if text)
    return {
        "host": host,
        "name": name,
        "wg_ip": str(wg_ip) if wg_ip is not None else None,
        "address": f"{wg_ip}/{net.prefixlen}" if wg_ip is not None and net is not None else None,
        "home_host": home["host"] if home else None,
        "home": home["name"] if home else None,
        "endpoint": home["static_endpoint"] if home else None,
        "allowed_ips": allowed,
        "dns": dns,
        "keepalive": keepalive,
    }


def _check_unique(
    nodes: list[dict[str, Any]], leaves: list[dict[str, Any]], key: str, var: str, problems: list[str]
) -> None:
    """A leaf that reuses a node's or an earlier leaf's value, naming both hosts."""
    seen: dict[Any, str] = {node[key]: node["host"] for node in nodes if node.get(key) is not None}
    for leaf in leaves:
        value = leaf[key]
        if value is None:
            continue
        if value in seen:
            problems.append(f"host {leaf['host']}: {var} {value} is also used by host {seen[value]}")
        else:
            seen[value] = leaf["host"]


def validate_leaves(
    subnet: Any, nodes: list[dict[str, Any]] | None, leaves: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """Check the leaves against the nodes as validate_mesh returns them (normalised).

    Return `problems` (the subnet's own problem is validate_mesh's to report) and `leaves`,
    normalised: name, wg_ip, address (wg_ip/prefix of the subnet), home_host (inventory),
    home (its node name, net.yaml's `home`), endpoint (home's), allowed_ips, dns, keepalive.
    """
    problems: list[str] = []
    net = parse_subnet(subnet)[0]
    nodes = list(nodes or [])
    node_hosts = {node["host"] for node in nodes}
    normalised = []
    for leaf in leaves or []:
        leaf = dict(leaf or {})
        checked = _check_leaf(leaf, net, nodes, problems)
        if checked["host"] in node_hosts:
            problems.append(
                f"host {checked['host']}: is in both wg_mesh and wg_leaves (a leaf runs no agent)"
            )
        normalised.append(checked)
    _check_unique([], normalised, "host", "inventory host", problems)
    _check_unique(nodes, normalised, "name", VAR_NAME, problems)
    _check_unique(nodes, normalised, "wg_ip", VAR_IP, problems)
    return {"problems": problems, "leaves": normalised}
