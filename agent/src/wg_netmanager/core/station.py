"""A static node's side, as the node drives it: only a static node has a `Station`.

It joins the member table (hub.py) and what serves it on the wire (serve.py): made from the
node's parameters, told of WireGuard's counters and of a reload's list of static nodes, and
ticked: members expire, a changed table is pushed. The node hands the members' messages
(KEYREQ, HELLO, LEAVE) to `serving`, reads `hub` for what it derives (the members, their
revision) and says its own entry through `hub.me`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address
from typing import Optional

from .hub import Hub
from .hublink import StaticNode
from .leaves import Leaf
from .messages import NodeInfo
from .model import PeerStats
from .params import Params
from .serve import Send, Serving, Vouch


def configured(statics: tuple[StaticNode, ...]) -> dict[IPv4Address, Optional[str]]:
    """The static nodes as the hub checks claims against them: wgIp -> name (None: any)."""
    return {s.wg_ip: s.name if s.named else None for s in statics}


class Station:
    def __init__(
        self,
        params: Params,
        me: NodeInfo,
        rng: random.Random,
        now: float,
        send: Send,
        vouch: Vouch,
        costly: Callable[[NodeInfo], bool],
    ) -> None:
        p = params
        self.hub = Hub(me, p.subnet, configured(p.statics), p.member_timeout, p.hello_timeout)
        self.serving = Serving(self.hub, rng, now, send, vouch, costly)
        self.set_leaves(p.leaves)

    def set_leaves(self, leaves: tuple[Leaf, ...]) -> None:
        """The leaves' addresses and keys, no member's to claim; a member that holds one now
        (net.yaml gave a leaf what a live node had) is dropped, and its next HELLO refused."""
        self.hub.leaves = {k: leaf.name for leaf in leaves for k in (str(leaf.wg_ip), leaf.public_key)}
        for key, member in list(self.hub.members.items()):
            if key in self.hub.leaves or str(member.info.wg_ip) in self.hub.leaves:
                self.hub.leave(key)

    def set_statics(self, statics: tuple[StaticNode, ...], me: NodeInfo) -> None:
        """A reload's list of static nodes (`Hub.set_statics`); `me`, our own entry, whose
        endpoint may have changed with it."""
        self.hub.set_statics(configured(statics))
        self.hub.me = me

    def observed(self, stats: Mapping[str, PeerStats]) -> None:
        """WireGuard's counters as read: where our WireGuard sees each member."""
        for key, st in stats.items():
            self.hub.observed(key, st.endpoint)

    def tick(self, now: float, stats: Optional[Mapping[str, PeerStats]]) -> list[NodeInfo]:
        """Run what is due; `stats`: WireGuard's counters if new since the last tick (what it
        received says which members are alive). The members that expired."""
        gone = self.hub.expire(now)
        self.serving.push(now)
        if stats is not None:
            self.hub.counters(stats, now)
        return gone

    def relay(self, view: Mapping[str, NodeInfo]) -> None:
        """What other static nodes say, for our members: the view but our members."""
        self.hub.set_relayed({k: v for k, v in view.items() if k not in self.hub.members})
