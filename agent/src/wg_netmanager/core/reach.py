"""What a node reaches beyond the nodes themselves, for `Node` in one place: the LAN subnets the
nodes in view announce (subnets.py), the leaves (leaves.py) and the exit node (exits.py).

`Reach` keeps the one thing that lasts between two merges of the view, the subnet plan; the
rest follows from the node's settings, view, static links and routes when its desired state
or its status is computed. It reads the node it serves and changes nothing of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from . import exits, leaves, subnets
from .desired import Route
from .hublink import HubLink
from .messages import NodeInfo
from .model import PathKind
from .status import subnet_status

if TYPE_CHECKING:
    from .node import Node


class Reach:
    def __init__(self) -> None:
        self.plan = subnets.NO_SUBNETS  # the announced subnets we route

    def replan(self, node: Node, view: dict[str, NodeInfo]) -> tuple[dict[str, NodeInfo], bool]:
        """The merged view as `node` uses it (the peers' local addresses inside a routed
        subnet hidden), and whether the subnet plan changed. The static nodes' addresses are
        the tunnel's underlay, which no subnet may take."""
        statics = [link.address for link in node.links.values() if link.address]
        plan = subnets.replan(self.plan, view, node.p, node.locals, statics, node.belief.certified_subnets)
        changed = plan != self.plan
        self.plan = plan
        return subnets.hide_routed_locals(view, plan), changed

    def exit(self, node: Node, route: Mapping[str, Route]) -> Optional[str]:
        """The exit node that carries our internet traffic now, if any: chosen and reached."""
        keys = static_keys(node.links)
        key = exits.choose(node.view, node.p.use_exit, keys, node.belief.certified_subnets)
        return key if key is not None and route[key][0] != PathKind.NONE else None

    def desired(self, node: Node, route: Mapping[str, Route]) -> dict[str, Any]:
        """desired.desired_state's arguments for subnets, leaves and the exit node."""
        p = node.p
        more = leaves.routes(p.leaves, p.name, static_keys(node.links))
        exit_key = self.exit(node, route)
        if exit_key is not None:
            more[exits.EVERYTHING] = exit_key
        return {
            "subnet_routes": self.plan.routes,
            "gateway_for": p.subnets,
            "masquerade": p.masquerade,
            "leaf_peers": leaves.own_peers(p.leaves, p.name),
            "more_allowed": more,
            "exit_via": exit_key is not None,
            "exit_offer": p.exit_node,
        }

    def status(
        self, node: Node, route: Mapping[str, Route], peers: Sequence[Mapping[str, Any]], wall: float
    ) -> dict[str, Any]:
        """The status document's `subnets`, `exitNode` and (with leaves) `leaves`."""
        p = node.p
        doc: dict[str, Any] = {
            "subnets": subnet_status(p.subnets, self.plan, node.view, route),
            "exitNode": exits.status(p.exit_node, p.use_exit, node.view, self.exit(node, route)),
        }
        if p.leaves:
            doc["leaves"] = leaves.status(p.leaves, p.name, peers, node.stats, wall)
        return doc


def static_keys(links: Mapping[str, HubLink]) -> dict[str, str]:
    """The static nodes that answered: their keys by name."""
    return {name: link.info.public_key for name, link in links.items() if link.info}
