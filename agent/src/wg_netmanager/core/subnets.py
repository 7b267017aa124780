"""Subnet gateways: which of the LAN subnets the nodes in view announce this node routes, and
why it refuses the others.

A node announces the subnets behind it (peer.yaml `subnets`, `--subnet`; NodeInfo.subnets).
Every other node routes each one to its announcer, unless the route would take over something
that is not the announcer's to take (each refusal is reported in the status, none is resolved
by chance):

- one outside the networks net.yaml permits (`network.routedSubnets`; by default the
  private-use ones, PRIVATE): a member cannot draw traffic for a public network to itself
  unless the operator listed it;
- with a network CA, a subnet its certificate does not list (within one it lists);
- one that overlaps the mesh subnet, or a network this node is on itself (its own LAN stays
  its own), or a subnet this node announces;
- one that holds the address of a static node or the endpoint a node is reached on: the
  tunnel's own packets must never be routed into the tunnel;
- one that overlaps another node's announcement: every announcement of the overlap is
  refused, on every node alike, until one of them stops.

Pure: one function of the view at one instant; O(S log S) in the number of subnets announced.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import TYPE_CHECKING, Optional

from .messages import NodeInfo

if TYPE_CHECKING:
    from .params import Params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    subnet: IPv4Network
    node: str  # the announcer's name
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"subnet": str(self.subnet), "node": self.node, "reason": self.reason}


@dataclass(frozen=True)
class SubnetPlan:
    routes: Mapping[IPv4Network, str]  # subnet -> the announcer's public key
    refused: tuple[Refusal, ...] = ()

    def route_for(self, ip: IPv4Address) -> Optional[IPv4Network]:
        return next((net for net in self.routes if ip in net), None)


NO_SUBNETS = SubnetPlan({})
# RFC 1918 and the shared address space of RFC 6598 (carrier-grade NAT, also what Tailscale
# and others number their nodes from).
PRIVATE = tuple(IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))


def plan(
    view: Mapping[str, NodeInfo],
    mesh: IPv4Network,
    own: Iterable[IPv4Network],
    locals_: Iterable[IPv4Interface],
    underlay: Iterable[IPv4Address],
    allowed: Callable[[NodeInfo], Optional[Collection[IPv4Network]]] = lambda info: None,
    permitted: Optional[Collection[IPv4Network]] = None,
) -> SubnetPlan:
    """`own`: what this node announces; `locals_`: its addresses (their networks are its
    LANs); `underlay`: addresses the tunnel itself is carried to (static nodes' addresses;
    the endpoints in view are added here); `allowed(info)`: the subnets its certificate
    lists, None without a network CA; `permitted`: net.yaml's routedSubnets (None: PRIVATE)."""
    if not any(info.subnets for info in view.values()):
        return NO_SUBNETS
    taken = [mesh, *own, *(a.network for a in locals_)]
    carried = {*underlay, *(_ip(info.endpoint.host) for info in view.values() if info.endpoint)}
    points = sorted(int(ip) for ip in carried if ip is not None)
    refused: list[Refusal] = []
    candidates: list[tuple[IPv4Network, NodeInfo]] = []
    for info in sorted(view.values(), key=lambda i: i.name):
        cert = allowed(info) if info.subnets else None
        for net in info.subnets:
            why = _why_not(net, cert, permitted, taken, points)
            if why is None:
                candidates.append((net, info))
            else:
                refused.append(Refusal(net, info.name, why))
    routes: dict[IPv4Network, str] = {}
    for group in _overlapping(candidates):
        if len({info.public_key for _, info in group}) == 1:  # one node's own nesting
            routes.update((net, info.public_key) for net, info in group)
            continue
        for net, info in group:
            others = sorted({o.name for _, o in group if o.public_key != info.public_key})
            refused.append(Refusal(net, info.name, f"overlaps what {', '.join(others)} announce"))
    refused.sort(key=lambda r: (r.node, int(r.subnet.network_address), r.subnet.prefixlen))
    return SubnetPlan(routes, tuple(refused))


def replan(
    old: SubnetPlan,
    view: Mapping[str, NodeInfo],
    p: Params,
    locals_: Iterable[IPv4Interface],
    statics: Iterable[str],
    allowed: Callable[[NodeInfo], Optional[Collection[IPv4Network]]],
) -> SubnetPlan:
    """`plan` for a node with settings `p` whose static nodes are at `statics` (the tunnel
    is carried to them: no subnet may take them); each refusal `old` did not have is logged."""
    underlay = [IPv4Address(a) for a in statics]
    new = plan(view, p.subnet, p.subnets, locals_, underlay, allowed, p.routed_subnets)
    for r in new.refused:
        if r not in old.refused:
            log.warning("not routing %s to %s: %s", r.subnet, r.node, r.reason)
    return new


def _why_not(
    net: IPv4Network,
    cert: Optional[Collection[IPv4Network]],
    permitted: Optional[Collection[IPv4Network]],
    taken: list[IPv4Network],
    points: list[int],
) -> Optional[str]:
    if not any(net.subnet_of(p) for p in (PRIVATE if permitted is None else permitted)):
        if permitted is None:
            return "not a private-use network (net.yaml's network.routedSubnets may permit it)"
        return "not within net.yaml's network.routedSubnets"
    if cert is not None and not any(net.subnet_of(c) for c in cert):
        return "not in its certificate"
    for t in taken:
        if net.overlaps(t):
            return f"overlaps {t}, which is this node's"
    first, last = int(net.network_address), int(net.broadcast_address)
    i = bisect.bisect_left(points, first)
    if i < len(points) and points[i] <= last:
        return f"holds {IPv4Address(points[i])}, an address the tunnel itself is carried to"
    return None


def _overlapping(items: list[tuple[IPv4Network, NodeInfo]]) -> list[list[tuple[IPv4Network, NodeInfo]]]:
    """Groups of announcements whose networks overlap (CIDRs nest or are disjoint: a sweep
    over them sorted by first address finds each group)."""
    items = sorted(items, key=lambda x: (int(x[0].network_address), -int(x[0].broadcast_address)))
    groups: list[list[tuple[IPv4Network, NodeInfo]]] = []
    end = -1
    for net, info in items:
        if groups and int(net.network_address) <= end:
            groups[-1].append((net, info))
            end = max(end, int(net.broadcast_address))
        else:
            groups.append([(net, info)])
            end = int(net.broadcast_address)
    return groups


def hide_routed_locals(view: dict[str, NodeInfo], routed: SubnetPlan) -> dict[str, NodeInfo]:
    """The view with every local address that lies in a routed subnet left out: this node
    reaches such an address through the tunnel, so it is no candidate for a direct path
    (a WireGuard endpoint there would carry the tunnel inside itself)."""
    if not routed.routes:
        return view
    out = dict(view)
    for key, info in view.items():
        kept = tuple(a for a in info.locals if routed.route_for(a.ip) is None)
        if len(kept) != len(info.locals):
            out[key] = replace(info, locals=kept)
    return out


def _ip(host: str) -> Optional[IPv4Address]:
    try:
        return IPv4Address(host)
    except ValueError:
        return None
