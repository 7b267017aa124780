"""What follows from the view: each node's path and the WireGuard configuration.

Pure functions of the node's state at one instant. A node in view is reached on its static
link (static nodes; for a static node, every member), on its direct path once that is up, or
through the first live static node whose table lists it (a gateway); else not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Optional

from .links import StaticLinks
from .messages import NodeInfo
from .model import DesiredState, PathKind, PeerSpec
from .paths import DirectPath

Route = tuple[PathKind, Optional[str]]  # path kind, and the gateway's public key (or None)


@functools.lru_cache(maxsize=1 << 16)
def host_network(ip: IPv4Address) -> IPv4Network:
    """`ip`/32; cached, since building an IPv4Network costs microseconds."""
    return IPv4Network((int(ip), 32))


def _net_order(net: IPv4Network) -> int:
    return int(net.network_address)


def routes(
    view: Mapping[str, NodeInfo],
    links: StaticLinks,
    paths: Mapping[str, DirectPath],
    members: Collection[str],
    now: float,
    hub_timeout: float,
) -> dict[str, Route]:
    """For every node in view: how it is reached."""
    gateways = [
        link
        for _, link in sorted(links.by_name.items())
        if link.info and link.alive(now, hub_timeout) and link.info.public_key in view
    ]
    result: dict[str, Route] = {}
    for key, info in view.items():
        link = links.at(info.wg_ip) if info.static else None
        if link is not None and link.alive(now, hub_timeout):
            result[key] = (PathKind.STATIC, None)
        elif link is not None and link.asked_since is not None:
            result[key] = (PathKind.NONE, None)  # a static node we talk to, gone silent
        elif key in members:
            result[key] = (PathKind.STATIC, None)
        elif key in paths and paths[key].is_up:
            result[key] = (paths[key].kind, None)
        else:
            # A static node we do not talk to, or a node without a direct path: through the
            # static node that has it as its own member, else through one that passes it on.
            listed = [lk for lk in gateways if lk.info and key in lk.table]
            own = next((lk for lk in listed if not lk.table[key].relayed), None)
            gw = own or (listed[0] if listed else None)
            result[key] = (PathKind.GATEWAY, gw.info.public_key) if gw and gw.info else (PathKind.NONE, None)
    return result


def desired_state(
    by_name: Sequence[tuple[str, NodeInfo]],
    route: Mapping[str, Route],
    links: StaticLinks,
    paths: Mapping[str, DirectPath],
    now: float,
    keepalive: int,
    forwarding: bool,
    subnet_routes: Mapping[IPv4Network, str] = {},
    gateway_for: tuple[IPv4Network, ...] = (),
    masquerade: bool = False,
    leaf_peers: tuple[PeerSpec, ...] = (),
    more_allowed: Mapping[IPv4Network, str] = {},
    exit_via: bool = False,
    exit_offer: bool = False,
) -> DesiredState:
    """`subnet_routes`: the LAN subnets routed to the nodes announcing them (subnets.plan);
    `gateway_for`: the ones this node announces itself, `masquerade` them. `leaf_peers`: the
    leaves this node is home to; `more_allowed`: networks that go where a node's own address
    goes, with no route of their own (the other leaves' addresses, by their home's key; the
    exit node's 0.0.0.0/0); `exit_via`: our internet traffic goes into the tunnel (policy
    routing); `exit_offer`: we are an exit node."""
    # Kept linear in the number of nodes with small constants (no address parsing, no
    # sorting of address objects): at 1000 nodes this is the agent's main cost.
    allowed: dict[str, list[IPv4Network]] = {k: [] for k, _ in by_name}
    for key, info in by_name:
        kind, gw = route[key]
        target = gw if kind == PathKind.GATEWAY else key
        if kind != PathKind.NONE and target in allowed:
            allowed[target].append(host_network(info.wg_ip))
    for net, key in (*subnet_routes.items(), *more_allowed.items()):  # where the node's address goes
        kind, gw = route.get(key, (PathKind.NONE, None))
        target = gw if kind == PathKind.GATEWAY else key
        if kind != PathKind.NONE and target in allowed:
            allowed[target].append(net)
    peers = []
    for key, info in by_name:
        endpoint, keep, generation = None, 0, 0
        if info.static:
            link = links.at(info.wg_ip)
            if link is None:
                endpoint = info.endpoint
            else:
                endpoint, keep = link.wg_endpoint(info), link.keepalive(now, keepalive)
                generation = link.generation
        elif key in paths:
            path = paths[key]
            endpoint, keep, generation = path.wg_endpoint(), path.wg_keepalive(), path.generation
        elif forwarding and route[key] == (PathKind.STATIC, None) and not info.mobile:
            keep = keepalive  # a static node's member: its liveness, and its NAT mapping
            # (a mobile member keeps its mapping open itself, and pays for every datagram)
        nets = allowed[key]
        if len(nets) > 1:
            nets.sort(key=_net_order)
        peers.append(PeerSpec(key, endpoint, tuple(nets), keep, generation))
    peers += leaf_peers
    # No routes for the nodes: every node in the view has its wgIp inside the mesh subnet
    # (merge_view), and every backend gives the interface the wgIp with the subnet's prefix,
    # whose connected route sends them all into WireGuard (one no peer has is dropped there:
    # fail closed). A /32 per peer cost a netlink round trip per change and, at 50 nodes,
    # most of an agent's CPU while the mesh formed. A routed subnet gets its route while its
    # announcement is in view, also while no peer carries it: dropped, not leaked.
    routes = tuple(sorted(subnet_routes, key=_net_order))
    return DesiredState(
        tuple(peers),
        routes,
        forwarding or bool(gateway_for) or exit_offer,
        gateway_for,
        masquerade and bool(gateway_for),
        exit_via,
        exit_offer,
    )
