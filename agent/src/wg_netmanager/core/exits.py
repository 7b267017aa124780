"""Exit nodes: a node that offers the mesh its internet access (peer.yaml `exitNode`), and
nodes that send their internet traffic through one (`useExitNode: NAME`).

A node using an exit puts 0.0.0.0/0 in the AllowedIPs of whichever peer carries the exit
node's address, and its backend routes everything but the tunnel's own packets into the
WireGuard interface (policy routing, backends/exitroute.py); the exit node masquerades what
comes out of the mesh. Who may be one: with a network CA, a node whose certificate lists
0.0.0.0/0; in shared-key mode only a static node (its name is bound to its address and key by
net.yaml), so that a member cannot take another node's name and draw its internet traffic.
The exit is used while it is in view, says it offers, and is reached; else the node's own
default route carries its traffic again (no kill switch).

Pure: which node, if any, carries this node's internet traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from ipaddress import IPv4Network
from typing import Optional

from .messages import NodeInfo

EVERYTHING = IPv4Network("0.0.0.0/0")


def choose(
    view: Mapping[str, NodeInfo],
    name: Optional[str],
    static_keys: Mapping[str, str],
    certified: Callable[[NodeInfo], Optional[Collection[IPv4Network]]],
) -> Optional[str]:
    """The public key of the exit node `name` if it may carry our traffic now, else None.
    `static_keys`: the static nodes that answered, their keys by name; `certified(info)`: the
    subnets its certificate lists (None without a CA)."""
    if name is None:
        return None
    info = next((i for i in view.values() if i.name == name), None)
    if info is None or not info.exit:
        return None
    cert = certified(info)
    if cert is None:  # shared-key mode: only a static node, under the key that answered
        return info.public_key if static_keys.get(name) == info.public_key else None
    return info.public_key if EVERYTHING in cert else None


def status(offers: bool, name: Optional[str], view: Mapping[str, NodeInfo], chosen: Optional[str]) -> dict:
    """`exitNode` of the status document: whether we offer one, which we would use, and
    whether our internet traffic goes through it now."""
    return {"offers": offers, "uses": name, "active": chosen is not None and chosen in view}
