"""This node as a client of the static nodes: the links to them all (`StaticLinks`), one
`HubLink` (hublink.py) per static node it talks to.

`StaticLinks` finds the link a claim or a key belongs to, reports when a link's derived state
changed so the node can recompute its view only then, and says when the shell should look up
the DNS name of a static node configured by name.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Optional

from .hublink import HANDSHAKE_SETTLE, RESOLVE_QUIET, HubLink, StaticNode
from .messages import NodeInfo
from .model import PeerStats

RESOLVE_EVERY = 30.0  # seconds between two look-ups of a static node's DNS name
RESOLVE_RETRY = 2.0  # the same while that static node does not answer (it may have moved)


class StaticLinks:
    """The links to every static node but ourselves, by configured name."""

    def __init__(self, statics: tuple[StaticNode, ...], own: Optional[StaticNode]) -> None:
        self.by_name = {
            s.name: HubLink(s, address=s.address, key=s.public_key) for s in statics if s is not own
        }
        self._at = {link.cfg.wg_ip: link for link in self.by_name.values()}
        self.silent = False  # a link went silent at the last tick: say HELLO (and KEYREQ) now

    def update(self, statics: tuple[StaticNode, ...], own: Optional[StaticNode]) -> bool:
        """A new list of static nodes (a reload): the link to one configured as before keeps
        all it holds; one that is new or configured differently (endpoint, ports, pinned key)
        starts afresh, as at start-up; one no longer listed goes. True if any link changed."""
        links = {}
        for s in statics:
            if s is not own:
                old = self.by_name.get(s.name)
                kept = old is not None and old.cfg == s
                links[s.name] = old if kept and old is not None else HubLink(s, s.address, key=s.public_key)
        changed = links.keys() != self.by_name.keys() or any(
            link is not self.by_name[name] for name, link in links.items()
        )
        self.by_name.clear()  # the same dict: Node.links is this one
        self.by_name.update(links)
        self._at = {link.cfg.wg_ip: link for link in links.values()}
        return changed

    def at(self, wg_ip: IPv4Address) -> Optional[HubLink]:
        return self._at.get(wg_ip)

    def claimed_by(self, info: NodeInfo) -> Optional[HubLink]:
        """The link whose node `info` claims to be: its wgIp, and its name if it has one."""
        link = self._at.get(info.wg_ip)
        return link if link is not None and (not link.cfg.named or link.cfg.name == info.name) else None

    def with_key(self, key: bytes) -> Optional[HubLink]:
        return next((lk for lk in self.by_name.values() if lk.key == key), None)

    def awaiting(self, nonce: int) -> Optional[HubLink]:
        """The link whose KEYREQ had this nonce."""
        return next((lk for lk in self.by_name.values() if nonce and lk.nonce == nonce), None)

    def tick(self, now: float, hub_timeout: float, keepalive: int) -> bool:
        """Note which links came alive, went silent or may start keepalives: True if any did
        (what we route and tell WireGuard depends on it)."""
        changed = False
        for link in self.by_name.values():
            shape = (link.alive(now, hub_timeout), link.keepalive(now, keepalive), bool(link.held(now)))
            if shape != link.shape:
                if link.shape[0] and not shape[0]:
                    link.went_silent(now)
                    self.silent = True
                link.shape, changed = shape, True
            changed = link.renew_due(now) or changed
        return changed

    def next_deadline(self, now: float, hub_timeout: float, keepalive: int) -> float:
        """When a link's liveness or keepalive next changes, or a name is due for a look-up,
        if nothing else happens."""
        times = [math.inf]
        for link in self.by_name.values():
            shape = (link.alive(now, hub_timeout), link.keepalive(now, keepalive), bool(link.held(now)))
            if shape != link.shape:
                return -math.inf  # changed since the last tick: due now
            if link.previous:
                times.append(link.previous_until)
            if link.alive(now, hub_timeout):
                times.append(max(link.last_ack, link.last_rx) + hub_timeout + 1e-6)
                if link.first_ack is not None and link.keepalive(now, keepalive) == 0:
                    times.append(link.first_ack + HANDSHAKE_SETTLE)
                times.append(link.renew_at())
            if link.cfg.address is None:  # by DNS name
                every = RESOLVE_RETRY if link.quiet(now) else RESOLVE_EVERY
                times.append(-math.inf if link.resolved_at is None else link.resolved_at + every)
                if link.hello_out is not None and not link.quiet(now):
                    times.append(link.hello_out + RESOLVE_QUIET)
        return min(times)

    def moved(self) -> None:
        """Our local addresses changed (see HubLink.generation)."""
        for link in self.by_name.values():
            link.generation += 1

    def counters(self, stats: Mapping[str, PeerStats], now: float) -> None:
        """WireGuard's counters as read: a static node whose peer received is alive."""
        for link in self.by_name.values():
            if link.key is not None:
                st = stats.get(base64.b64encode(link.key).decode())
                if st is not None:
                    link.heard(st.rx_bytes, now, st.tx_bytes)

    def set_address(self, name: str, address: Optional[str], now: float) -> bool:
        """The shell's answer for a static node's DNS name. None: the look-up failed; the
        last address found stays (a DNS hiccup must not cut us off a node that did not move).
        True: it moved (or was found)."""
        link = self.by_name.get(name)
        if link is None:
            return False
        link.resolved_at = now
        if address is None or address == link.address:
            return False
        link.address = address
        return True

    def resolve_due(self, now: float) -> list[str]:
        """Names of the static nodes given by DNS name whose address the shell should look up
        now: every RESOLVE_EVERY seconds, and every RESOLVE_RETRY seconds once the node has
        left a HELLO unanswered for RESOLVE_QUIET (or never answered). A dynamic-DNS node that moved is then
        found again before `hub_timeout`, so its table, and the paths between members learnt
        from it, are never dropped."""
        due = []
        for name, link in self.by_name.items():
            if link.cfg.address is not None:
                continue  # configured as an IP address
            every = RESOLVE_RETRY if link.quiet(now) else RESOLVE_EVERY
            if link.resolved_at is None or now - link.resolved_at >= every:
                due.append(name)
        return due
