"""The view: every other node this node knows, merged from what it hears, by public key.

Sources in order of trust: the members of our own hub (a static node's own table), then per
live static link, by name: the static node itself (as it answered, with the endpoint we reach
it on) and the table it serves; then the same of the static nodes we talk to that went
silent, as they last said it (held until they answer again). The first claim of a wgIp or a
name wins; a receiver applies the static nodes' own checks again, entry by entry: nothing
outside the subnet or on its network or broadcast address, a static node's address only
under its key (and name, if configured), with a network CA only under a valid certificate
(trust.py), and only local addresses worth probing (no loopback, broadcast, multicast, mesh
or unspecified address: a PROBE must never go to ourselves or to a whole LAN). The direct
paths follow the view: a node gone loses its path, a node that moved or whose NAT mapping
changed starts its path over.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Callable, Iterable

from .links import StaticLinks
from .messages import NodeInfo
from .model import PathKind
from .paths import DirectPath


def merge_view(
    me: NodeInfo,
    subnet: IPv4Network,
    members: Iterable[NodeInfo],
    links: StaticLinks,
    now: float,
    hub_timeout: float,
    believed: Callable[[NodeInfo], bool] = lambda info: True,
    relays: bool = True,
) -> dict[str, NodeInfo]:
    """`relays` False (a static node): entries another static node passes on are left out,
    so that what static nodes pass on never goes round in circles."""
    view: dict[str, NodeInfo] = {}
    taken_ips: set[IPv4Address] = {me.wg_ip}
    taken_names = {me.name}
    sources = list(members)
    alive = {name: link.alive(now, hub_timeout) for name, link in links.by_name.items()}
    # Live static nodes first, then what the previous run of a restarted one served (held a
    # while, hublink.RESTART_HOLD), then what the silent ones we talk to said last, held until
    # they answer again: a restarted, partitioned or dead static node must not tear down the
    # direct paths between the nodes it introduced (it is a gateway only for the nodes its
    # current table lists: desired.routes).
    for live in (True, False):
        for name in sorted(links.by_name):
            link = links.by_name[name]
            if alive[name] != live or not link.info or (not live and link.asked_since is None):
                continue
            sources.append(replace(link.info, static=True, endpoint=link.wg_endpoint(link.info)))
            sources += [e for e in link.table.values() if relays or not e.relayed]
        for name in sorted(links.by_name):
            link = links.by_name[name]
            if alive[name] == live and (live or link.asked_since is not None):
                sources += [e for e in link.held(now).values() if relays or not e.relayed]
    unusable = (subnet.network_address, subnet.broadcast_address)
    for info in sources:
        if info.public_key == me.public_key or info.public_key in view:
            continue
        if info.wg_ip not in subnet or info.wg_ip in taken_ips or info.name in taken_names:
            continue
        if info.wg_ip in unusable or not _static_claim_ok(info, links) or not believed(info):
            continue
        if not all(_probe_worthy(a, subnet) for a in info.locals):
            info = replace(info, locals=tuple(a for a in info.locals if _probe_worthy(a, subnet)))
        view[info.public_key] = info
        taken_ips.add(info.wg_ip)
        taken_names.add(info.name)
    return view


def _static_claim_ok(info: NodeInfo, links: StaticLinks) -> bool:
    """A static node's address only under the key its link holds (or is pinned to) and, if
    the configuration names it, under that name."""
    link = links.at(info.wg_ip)
    if link is None:
        return True
    if link.cfg.named and link.cfg.name != info.name:
        return False
    return link.key is None or base64.b64encode(link.key).decode() == info.public_key


def _probe_worthy(addr: IPv4Interface, subnet: IPv4Network) -> bool:
    ip = addr.ip
    return not (
        ip.is_loopback
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_link_local
        or ip in subnet
        or (addr.network.prefixlen < 31 and ip == addr.network.broadcast_address)
    )


def follow_view(paths: dict[str, DirectPath], view: dict[str, NodeInfo]) -> None:
    """Drop the paths of nodes no longer in view; start over those whose node changed."""
    for key in list(paths):
        path = paths[key]
        if key not in view:
            del paths[key]
        elif view[key] != path.peer:
            old, path.peer = path.peer, view[key]
            # It moved, or its NAT mapping changed (which a LAN path does not use), or we
            # just learnt where it is: start over at once.
            moved = old.locals != path.peer.locals
            # No mapping (a restarted static node has not seen it yet) is not a new one, and
            # the one known before coming back is not either.
            seen = path.seen_endpoint or old.endpoint
            now_at = path.peer.endpoint
            remapped = now_at is not None and now_at != seen and path.kind != PathKind.LAN
            path.seen_endpoint = now_at or seen
            if moved or remapped:
                path.restart()
