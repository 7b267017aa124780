# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Check the mesh described by the inventory before anything is deployed.

Pure logic: no Ansible, no sockets, no DNS. `validate_mesh` collects every problem instead of
stopping at the first one, so one run of the playbook tells the user all that is wrong, each
message naming the inventory host and the variable to fix.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

DEFAULT_INTERFACE = "wg0"

# The inventory variables the roles map onto the module's options; messages name these so
# the user knows what to edit.
VAR_SUBNET = "wg_subnet"
VAR_IP = "wg_ip"
VAR_NAME = "wg_name"
VAR_ENDPOINT = "wg_static_endpoint"
VAR_ADMIN_PORT = "wg_admin_port"
VAR_INTERFACE = "wg_interface"
VAR_SUBNETS = "wg_subnets"
VAR_EXIT = "wg_exit_node"
VAR_USE_EXIT = "wg_use_exit_node"
VAR_MODE = "wg_mode"
MODES = ("normal", "mobile")  # the agent's (peer.yaml mode)
MAX_SUBNETS = 8  # the agent's limit (peer.yaml subnets)

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # IFNAMSIZ - 1, no '/' or blanks


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_subnet(text: Any) -> tuple[ipaddress.IPv4Network | None, str | None]:
    """Return (network, None) or (None, problem)."""
    if _blank(text):
        return None, f"{VAR_SUBNET} is missing"
    text = str(text).strip()
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            return (
                None,
                f"{VAR_SUBNET} {text} has host bits set (did you mean {fixed}?)",
            )
        return None, f"{VAR_SUBNET} {text!r} is not an IPv4 CIDR such as 10.1.1.0/24"
    if not isinstance(net, ipaddress.IPv4Network):
        return None, f"{VAR_SUBNET} {text} is not IPv4"
    if net.prefixlen > 30:
        return None, f"{VAR_SUBNET} {text} leaves no room for nodes (use /30 or larger)"
    return net, None


def parse_port(value: Any) -> tuple[int | None, str | None]:
    """Return (port, None) or (None, reason); accepts ints and digit strings, not bools."""
    if isinstance(value, bool):
        return None, "is not a port number"
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.strip().isdigit():
        port = int(value.strip())
    else:
        return None, "is not a port number"
    if not 1 <= port <= 65535:
        return None, "is out of range 1-65535"
    return port, None


def default_admin_port(wg_port: int) -> int:
    """The agent's control port for a WireGuard port (agent core/config.py default_admin_port)."""
    return wg_port + 1 if wg_port < 65535 else wg_port - 1


def valid_hostname(host: str) -> bool:
    """An IPv4 address or an RFC 1123 host name (the agent resolves names itself)."""
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    # All-numeric dotted names would be mistaken for (bad) addresses by resolvers.
    if len(host) > 253 or host.replace(".", "").isdigit():
        return False
    return all(_LABEL.match(label) for label in host.rstrip(".").split("."))


def parse_endpoint(text: Any) -> tuple[tuple[str, int] | None, str | None]:
    """Parse `host-or-ip:port`. Return ((host, port), None) or (None, problem)."""
    text = str(text).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        return None, f"{VAR_ENDPOINT} {text!r} is not host:port"
    if ":" in host or host.startswith("["):
        return None, f"{VAR_ENDPOINT} {text!r}: IPv6 endpoints are not supported"
    port, err = parse_port(port_text)
    if port is None:
        return None, f"{VAR_ENDPOINT} {text!r}: port {err}"
    if not valid_hostname(host):
        return (
            None,
            f"{VAR_ENDPOINT} {text!r}: {host!r} is not a valid host name or IPv4",
        )
    return (host, port), None


def _check_ip(raw: Any, net: ipaddress.IPv4Network | None) -> tuple[Any, str | None]:
    if _blank(raw):
        return None, f"{VAR_IP} is missing"
    try:
        ip = ipaddress.IPv4Address(str(raw).strip())
    except ValueError:
        return None, f"{VAR_IP} {raw!r} is not an IPv4 address"
    if net is not None:
        if ip not in net:
            return ip, f"{VAR_IP} {ip} is outside {VAR_SUBNET} {net}"
        if ip == net.network_address:
            return ip, f"{VAR_IP} {ip} is the network address of {VAR_SUBNET} {net}"
        if ip == net.broadcast_address:
            return ip, f"{VAR_IP} {ip} is the broadcast address of {VAR_SUBNET} {net}"
    return ip, None


def parse_cidr(text: str, var: str, example: str, hint: int, ipv6: bool = False) -> tuple[Any, str | None]:
    """One CIDR of an inventory list, written without host bits: (network, None) or (None,
    problem); `ipv6` lets IPv6 networks through too."""
    try:
        net = ipaddress.ip_network(text, strict=False) if ipv6 else ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return None, f"{var}: {text!r} is not {'a' if ipv6 else 'an IPv4'} CIDR such as {example}"
    if "/" not in text:
        return None, f"{var}: {text!r} needs a prefix length, such as {text}/{hint}"
    if str(net) != text:
        return None, f"{var}: {text} has host bits set (did you mean {net}?)"
    return net, None


def parse_subnets(
    raw: Any, net: ipaddress.IPv4Network | None
) -> tuple[list[ipaddress.IPv4Network], list[str]]:
    """A node's wg_subnets: (networks, problems), as the agent would take them."""
    if raw is None:
        return [], []
    if isinstance(raw, str) or not isinstance(raw, list):
        return [], [f"{VAR_SUBNETS} must be a list of CIDRs such as ['192.168.50.0/24']"]
    if len(raw) > MAX_SUBNETS:
        return [], [f"{VAR_SUBNETS} lists {len(raw)}, at most {MAX_SUBNETS}"]
    nets: list[ipaddress.IPv4Network] = []
    problems: list[str] = []
    for item in raw:
        text = str(item).strip()
        sub, problem = parse_cidr(text, VAR_SUBNETS, "192.168.50.0/24", 24)
        if problem is not None:
            problems.append(problem)
        elif sub.prefixlen == 0:
            problems.append(f"{VAR_SUBNETS}: {text} is every address, not a subnet")
        elif net is not None and sub.overlaps(net):
            problems.append(f"{VAR_SUBNETS}: {text} overlaps {VAR_SUBNET} {net}")
        elif sub in nets:
            problems.append(f"{VAR_SUBNETS}: {text} is listed twice")
        else:
            nets.append(sub)
    return nets, problems


def _check_overlaps(nodes: list[dict[str, Any]], problems: list[str]) -> None:
    """Two hosts announcing overlapping subnets: every agent would refuse both."""
    seen: list[tuple[ipaddress.IPv4Network, str]] = []
    for node in nodes:
        for text in node["subnets"]:
            sub = ipaddress.IPv4Network(text)
            for other, host in seen:
                if host != node["host"] and sub.overlaps(other):
                    problems.append(
                        f"host {node['host']}: {VAR_SUBNETS} {sub} overlaps {other} of host {host}"
                        " (the nodes would route neither)"
                    )
        seen += [(ipaddress.IPv4Network(t), node["host"]) for t in node["subnets"]]


def _check_node(
    node: dict[str, Any], net: ipaddress.IPv4Network | None, problems: list[str]
) -> dict[str, Any]:
    """Validate one node, append its problems, return it normalised."""
    host = str(node.get("host") or "").strip() or "?"
    found: list[str | None] = []

    name = host if _blank(node.get("name")) else str(node["name"]).strip()
    if not _NODE_NAME.match(name):
        found.append(f"{VAR_NAME} {name!r} is not a valid node name")

    wg_ip, err = _check_ip(node.get("wg_ip"), net)
    found.append(err)

    endpoint = None
    if not _blank(node.get("static_endpoint")):
        endpoint, err = parse_endpoint(node["static_endpoint"])
        found.append(err)

    admin_port = None
    if not _blank(node.get("admin_port")):
        admin_port, err = parse_port(node["admin_port"])
        if err:
            found.append(f"{VAR_ADMIN_PORT} {node['admin_port']!r} {err}")
    elif endpoint is not None:
        admin_port = default_admin_port(endpoint[1])
    if endpoint is not None and admin_port == endpoint[1]:
        found.append(f"{VAR_ADMIN_PORT} {admin_port} is the port of {VAR_ENDPOINT}")

    interface = node.get("interface")
    interface = DEFAULT_INTERFACE if _blank(interface) else str(interface).strip()
    if not _IFNAME.match(interface):
        found.append(f"{VAR_INTERFACE} {interface!r} is not a valid interface name")

    subnets, errs = parse_subnets(node.get("subnets"), net)
    found += errs

    exit_node = bool(node.get("exit_node"))
    use_exit = None if _blank(node.get("use_exit_node")) else str(node["use_exit_node"]).strip()
    if use_exit is not None and (exit_node or use_exit == name):
        why = "this node itself" if use_exit == name else f"a node with {VAR_EXIT} uses none"
        found.append(f"{VAR_USE_EXIT} {use_exit}: {why}")
        use_exit = None

    mode = "normal" if _blank(node.get("mode")) else str(node["mode"]).strip()
    if mode not in MODES:
        found.append(f"{VAR_MODE} {mode!r} is not one of {', '.join(MODES)}")
        mode = "normal"
    elif mode == "mobile" and endpoint is not None:
        # The agent's config check refuses it, so the node would not start.
        found.append(f"{VAR_MODE} mobile: a node with {VAR_ENDPOINT} is a static node and cannot be mobile")

    problems.extend(f"host {host}: {text}" for text in found if text)
    return {
        "host": host,
        "name": name,
        "wg_ip": str(wg_ip) if wg_ip is not None else None,
        "static_endpoint": f"{endpoint[0]}:{endpoint[1]}" if endpoint else None,
        "admin_port": admin_port,
        "interface": interface,
        "static": endpoint is not None,
        "subnets": [str(n) for n in subnets],
        "exit_node": exit_node,
        "use_exit_node": use_exit,
        "mode": mode,
    }


def _check_exits(nodes: list[dict[str, Any]], ca: bool, problems: list[str]) -> None:
    """Each wg_use_exit_node names a node that offers an exit and that the agents accept as
    one: with a CA any (its certificate lists 0.0.0.0/0), in shared-key mode a static node."""
    by_name = {node["name"]: node for node in nodes}
    for node in nodes:
        name = node["use_exit_node"]
        if name is None:
            continue
        exit_ = by_name.get(name)
        if exit_ is None:
            why = "no node of the mesh has that name"
        elif not exit_["exit_node"]:
            why = f"host {exit_['host']} does not offer an exit ({VAR_EXIT})"
        elif not ca and not exit_["static"]:
            why = f"host {exit_['host']} has no {VAR_ENDPOINT}: without a CA only a static node"
            why += " may be an exit"
        else:
            continue
        problems.append(f"host {node['host']}: {VAR_USE_EXIT} {name}: {why}")


def _check_unique(nodes: list[dict[str, Any]], key: str, var: str, problems: list[str]) -> None:
    """Report every node that reuses a value of an earlier one, naming both hosts."""
    seen: dict[Any, str] = {}
    for node in nodes:
        value = node[key]
        if value is None:
            continue
        if value in seen:
            problems.append(f"host {node['host']}: {var} {value} is also used by host {seen[value]}")
        else:
            seen[value] = node["host"]


def validate_mesh(subnet: Any, nodes: list[dict[str, Any]] | None, ca: bool = False) -> dict[str, Any]:
    """Validate the whole mesh.

    Return a dict with `problems` (list of str, empty when all is well), `nodes` (normalised)
    and `static_peers` (the `peers:` mapping of net.yaml: name -> endPoint, adminPort, wgIp).
    """
    problems: list[str] = []
    net, err = parse_subnet(subnet)
    if err:
        problems.append(err)
    normalised = [_check_node(dict(node or {}), net, problems) for node in nodes or []]
    _check_unique(normalised, "host", "inventory host", problems)
    _check_unique(normalised, "name", VAR_NAME, problems)
    _check_unique(normalised, "wg_ip", VAR_IP, problems)
    _check_unique(normalised, "static_endpoint", VAR_ENDPOINT, problems)
    _check_overlaps(normalised, problems)
    _check_exits(normalised, ca, problems)
    if not normalised:
        problems.append("no nodes: the list of mesh hosts is empty")
    elif not any(node["static"] for node in normalised):
        problems.append(f"no static node: at least one host needs {VAR_ENDPOINT}")
    static_peers = {
        node["name"]: {
            "endPoint": node["static_endpoint"],
            "adminPort": node["admin_port"],
            "wgIp": node["wg_ip"],
        }
        for node in normalised
        if node["static"]
    }
    return {"problems": problems, "nodes": normalised, "static_peers": static_peers}
