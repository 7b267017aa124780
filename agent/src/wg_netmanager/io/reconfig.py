"""The shell's translation of the configuration files into the core's terms (`params`,
`statics`: static nodes by address, DNS names left to the resolver), and a reload (SIGHUP)
applied to a running node (`apply_reload`)."""

from __future__ import annotations

import logging
import time
from dataclasses import fields, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Optional

from ..core import mobile
from ..core.config import NetConfig, NodeSettings
from ..core.node import Node, Params, StaticNode
from .resolver import Resolver

log = logging.getLogger(__name__)


def statics(net: NetConfig) -> tuple[StaticNode, ...]:
    return tuple(
        StaticNode(
            p.name,
            p.wg_ip,
            ip_or_none(p.endpoint_host),
            p.endpoint_port,
            p.admin_port,
            p.named,
            p.public_key,
        )
        for p in net.peers
    )


def params(s: NodeSettings, net: NetConfig, public_key: str, listen_port: int, cert: bytes) -> Params:
    p = Params(
        s.name,
        s.wg_ip,
        net.subnet,
        public_key,
        listen_port,
        s.admin_port,
        statics(net),
        ca_public_key=net.ca_public_key,
        revoked=net.revoked,
        cert=cert,
        subnets=s.subnets,
        routed_subnets=net.routed_subnets,
        leaves=net.leaves,
        exit_node=s.exit_node,
        use_exit=s.use_exit_node,
        masquerade=s.masquerade,
    )
    return mobile.params(p) if s.mobile else p


def apply_reload(
    node: Node, old: NetConfig, was: NodeSettings, new: NetConfig, now: NodeSettings, resolver: Resolver
) -> NetConfig:
    """Apply what can change while running: the shared keys (a rotation), the network CA, the
    revoked serials, the routed subnets, the static nodes (added, removed, moved, pinned) and
    the leaves, with the interface and every tunnel left up. Anything else (this node's name,
    address, ports, interface, backend; the subnet; whether it is a static node) needs a
    restart, and the log says so.
    Returns the configuration that now runs."""
    if (new.shared_key, new.previous_key) != (old.shared_key, old.previous_key):
        node.set_shared_keys(new.shared_key, new.previous_key)
        log.info(
            "reload: shared key%s", " rotating (previous key still accepted)" if new.previous_key else ""
        )
    node.set_trust(new.ca_public_key, new.revoked)
    if new.routed_subnets != old.routed_subnets:
        node.set_routed_subnets(new.routed_subnets)
        log.info("reload: routed subnets now %s", _nets(new.routed_subnets))
    if (new.ca_public_key, new.revoked) != (old.ca_public_key, old.revoked):
        log.info(
            "reload: network CA %s, %d revoked", "set" if new.ca_public_key else "none", len(new.revoked)
        )
    why = needs_restart(old, was, new, now)
    if why is None and new.peers != old.peers:
        try:
            node.set_statics(statics(new), time.monotonic())
        except ValueError as exc:
            why = str(exc)
        else:
            resolver.set_hosts(by_dns_name(new))
            names = sorted(p.name for p in new.peers)
            log.info("reload: static nodes now %s", ", ".join(names) or "none")
    if why is None and new.leaves != old.leaves:
        node.set_leaves(new.leaves)
        log.info("reload: leaves now %s", ", ".join(sorted(leaf.name for leaf in new.leaves)) or "none")
    if why is not None:
        log.warning("reload: %s; restart the agent to apply that", why)
        return replace(new, subnet=old.subnet, peers=old.peers, leaves=old.leaves)  # what runs
    return new


def needs_restart(old: NetConfig, was: NodeSettings, new: NetConfig, now: NodeSettings) -> Optional[str]:
    """What in a reloaded configuration only a restart applies, or None."""
    if new.subnet != old.subnet:
        return f"the subnet changed ({old.subnet} to {new.subnet})"
    changed = [f.name for f in fields(was) if getattr(was, f.name) != getattr(now, f.name)]
    return f"this node's {', '.join(changed)} changed" if changed else None


def _nets(nets: Optional[tuple[IPv4Network, ...]]) -> str:
    return "the private-use networks" if nets is None else ", ".join(map(str, nets)) or "none"


def by_dns_name(net: NetConfig) -> dict[str, str]:
    """Static nodes given by DNS name: name -> host name (the shell looks them up)."""
    return {p.name: p.endpoint_host for p in net.peers if ip_or_none(p.endpoint_host) is None}


def ip_or_none(host: str) -> Optional[str]:
    try:
        return str(IPv4Address(host))
    except ValueError:
        return None  # a DNS name: looked up when the node asks (resolve_due)
