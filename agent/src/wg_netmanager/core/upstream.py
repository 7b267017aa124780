"""This node as a client of its static nodes, as the node drives it.

`Upstream` joins the links to the static nodes (links.py) and the client that speaks for
them (client.py): made from the node's parameters, handed the static nodes' answers the
node dispatches, told of a static node's new address and of a reload's list, and ticked.
Its `tick` and `answer` say when a link's derived state changed, so the node recomputes its
view only then; `next_deadline` is when it next needs a tick.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Optional

from . import messages as m
from .client import Client, Rejected, Send, Vouch
from .hublink import StaticNode
from .links import StaticLinks
from .messages import NodeInfo
from .model import Endpoint, PeerStats
from .params import Params
from .wire import Codec, Drop, Opened


class Upstream:
    """The links (`links`, by configured name in `links.by_name`) and their `client`."""

    def __init__(
        self,
        params: Params,
        codec: Codec,
        rng: random.Random,
        send: Send,
        send_raw: Callable[[bytes, Endpoint], None],
        vouch: Vouch,
        rejected: Rejected,
        now: float,
    ) -> None:
        self.links = StaticLinks(params.statics, params.own_static)
        self.client = Client(
            self.links,
            codec,
            rng,
            send,
            send_raw,
            vouch,
            rejected,
            params.hub_timeout,
            codec.identity.public,
            0 if params.is_static else params.homes,
            (params.heartbeat, params.idle_heartbeat),
            now,
            tunnel=params.mobile,
        )
        self.hub_timeout, self.keepalive = params.hub_timeout, params.static_keepalive

    def set_address(self, name: str, address: Optional[str], now: float) -> bool:
        """The shell's answer for a static node's DNS name (`StaticLinks.set_address`). True:
        it moved, and hears our HELLO there now, not a second later."""
        if not self.links.set_address(name, address, now):
            return False
        self.client.hello_at(now)
        return True

    def update(self, statics: tuple[StaticNode, ...], own: Optional[StaticNode], now: float) -> None:
        """A reload's list of static nodes (`StaticLinks.update`): ranked again, and told now."""
        self.links.update(statics, own)
        self.client.rank()
        self.client.hello_at(now)

    def tick(self, now: float, stats: Optional[Mapping[str, PeerStats]], me: Callable[[], NodeInfo]) -> bool:
        """Run what is due; `stats`: WireGuard's counters if new since the last tick (what
        they received says which static nodes are alive). True if a link came alive, went
        silent, may start keepalives or had its WireGuard peer made again."""
        if stats is not None:
            self.links.counters(stats, now)
        self.client.tick(now, me)
        changed = self.links.tick(now, self.hub_timeout, self.keepalive)
        if self.links.silent:  # not at the next idle heartbeat, up to 10 s away
            self.links.silent = False
            self.client.hello_at(now)
        return changed

    def tables_from(self, opened: Opened) -> None:
        """Before a table (or delta) is decoded: Drop("rejected") unless the static node
        with the sender's key sent it, in its current run."""
        link = self.links.with_key(opened.sender)
        if link is None or link.epoch != opened.epoch:
            raise Drop("rejected")

    def answer(self, now: float, msg: m.Message, opened: Opened, src: Endpoint, me: NodeInfo) -> bool:
        """A static node's answer (`Client.handle`); True if what we hold of it changed. Out
        of step after it, the next HELLO goes within a heartbeat (`Client.answered`)."""
        changed = self.client.handle(now, msg, opened, src, me)
        self.client.answered(now, me)
        return changed

    def next_deadline(self, now: float) -> float:
        """When `tick` is next due if nothing else happens."""
        return min(
            self.client.next_deadline(), self.links.next_deadline(now, self.hub_timeout, self.keepalive)
        )
