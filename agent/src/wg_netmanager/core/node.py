"""The node state machine: one per agent, sans-IO.

Inputs: datagrams (with their source), ticks, WireGuard stats, local addresses, resolved
addresses of static nodes; time is always an argument. Outputs: datagrams to send, the desired
WireGuard state, and a status document. The asyncio shell (io/daemon.py) and the simulator
(tests/sim) drive the very same object.

`Node` dispatches messages, keeps the outbox and one revision counter: every input that can
change what is derived (the view, the paths' WireGuard side, the static links) bumps it, and
the view and the desired state are recomputed only when it (or the hub's) moved. The parts:
`upstream` (this node as a client of its static nodes: `client` and `links`), `station` (a
static node's side: `serve` and `hub`), `belief` (what claims are believed, on the wall
clock: `trust`), `view` (merging what we hear), `discovery`, `paths` and `probes` (direct
paths), `desired` (routes, WireGuard configuration), `status` (the status document), `params`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

from . import desired as d
from . import leaves, mobile
from . import messages as m
from .belief import Belief
from .discovery import Paths
from .hublink import HubLink, StaticNode
from .limits import LogLimiter, PerSource
from .messages import NodeInfo
from .model import DesiredState, Endpoint, PathKind, PeerStats
from .params import Params, b64
from .probes import Probes
from .reach import Reach
from .station import Station
from .status import peer_status, status_document
from .upstream import Upstream
from .view import merge_view
from .wire import DROP_REASONS, KEYREQ_TYPE, Codec, Drop, Identity, Opened

log = logging.getLogger(__name__)

BUSY_FOR = 5.0  # seconds after a change during which the node counts as busy
# Keys derived for senders we hold none for (a Diffie-Hellman each), per source address and
# in all (tokens per second, burst): a flood from one address cannot starve the others.
NEW_KEYS = ((50.0, 128.0), (2000.0, 4000.0))

__all__ = ["Node", "Params", "StaticNode", "HubLink", "PathKind"]


class Node:
    def __init__(
        self,
        params: Params,
        shared_key: bytes,
        identity: Identity,
        now: float,
        rng: random.Random,
        previous_key: Optional[bytes] = None,
    ) -> None:
        if b64(identity.public) != params.public_key:
            raise ValueError("the identity's public key is not Params.public_key")
        self.p = params
        self.rng = rng
        self.codec = Codec(shared_key, identity, rng.getrandbits(64) | 1, previous_key)
        self.belief = Belief(params.ca_public_key, params.revoked)
        self.cert = params.cert
        self.log_limit = LogLimiter()
        self.drops: Counter[str] = Counter({r: 0 for r in DROP_REASONS})
        self.new_keys = PerSource(*NEW_KEYS[0], *NEW_KEYS[1])
        self.locals: list[IPv4Interface] = []
        self.active: frozenset[IPv4Address] = frozenset()  # mesh addresses with traffic now
        self.wishes: tuple[IPv4Address, ...] = ()  # a mobile node: what of it we tell (mobile.py)
        self.upstream = Upstream(
            params, self.codec, rng, self._send, self._send_raw, self.belief.vouch, self._log_rejected, now
        )
        self.static_links, self.client = self.upstream.links, self.upstream.client
        self.links = self.static_links.by_name  # by configured name
        self.station = (
            Station(params, self._me(), rng, now, self._seal, self.belief.vouch, self.belief.costly)
            if params.is_static
            else None
        )
        self.hub = self.station.hub if self.station else None
        self.serving = self.station.serving if self.station else None
        self.directs = Paths(params.timing, params.public_key)  # direct paths to the non-static peers
        self.paths = self.directs.by_key  # by public key
        self.probes = Probes(self.directs, params.name, params.public_key, self._send)
        self.stats: dict[str, PeerStats] = {}
        self.view: dict[str, NodeInfo] = {}  # every other node we know, by public key
        self._by_name: list[tuple[str, NodeInfo]] = []  # self.view's items, by name
        self.reach = Reach()  # subnets, leaves, the exit node (reach.py)
        self.revision = 0  # bumped by every input that can change desired() (see `_changed`)
        self._view_revision = 0  # bumped by those that can change the view too
        self._view_rev: Optional[tuple[int, int]] = None  # (view revision, hub's) of self.view
        self._desired: Optional[tuple[tuple[int, int], DesiredState]] = None
        self._ticked_rev = -1  # revision at the end of the last tick
        self._ticked_revs: tuple[int, int] = (-1, -1)  # and the hub's with it
        self._stats_new = False  # counters that changed since the last tick
        self._probing = 0  # paths in the PROBING state after the last tick
        self._last_change = now
        self.out: list[tuple[bytes, Endpoint]] = []

    def _changed(self, view: bool = False) -> None:
        """Something derived may differ now: desired() is recomputed, and with `view` (a
        static link, the local addresses) the view too. A direct path's change only needs
        the former, and paths change on most ticks while a mesh forms."""
        self.revision += 1
        self._view_revision += view

    def _revs(self, view: bool = False) -> tuple[int, int]:
        return self._view_revision if view else self.revision, self.hub.revision if self.hub else -1

    # --- inputs -----------------------------------------------------------------------------

    def set_locals(self, addrs: list[IPv4Interface]) -> None:
        addrs = sorted(a for a in addrs if a.ip not in self.p.subnet)
        if addrs != self.locals:
            if self.locals:  # we moved: our direct paths are probably gone
                self.directs.restart_all()
                self.static_links.moved()
            self.directs.touch_all()
            self.locals = addrs
            self._changed(view=True)
            if self.hub:
                self.hub.me = self._me()
            self.client.hello_at()  # tell the static nodes at once (roaming)

    def set_active(self, active: frozenset[IPv4Address]) -> None:
        """The mesh addresses that had traffic with us lately (mobile.ACTIVE_FOR): a mobile
        node tries direct paths only to those, and names them to the mesh (mobile.py)."""
        if active != self.active:
            self.active = active
            self.directs.touch_all()
            self._new_wishes()

    def _new_wishes(self) -> None:
        wishes = mobile.wishes(self.active, self.view) if self.p.mobile else ()
        if wishes != self.wishes:
            self.wishes = wishes
            self._changed(view=True)
            self.client.hello_at()  # the peers learn it through the home at once

    def set_static_address(self, name: str, address: Optional[str], now: float) -> None:
        """The shell's answer for a static node's DNS name (None: the look-up failed)."""
        if self.upstream.set_address(name, address, now):
            self._changed(view=True)

    def resolve_due(self, now: float) -> list[str]:
        """Names of the static nodes whose DNS name the shell should look up now (see
        `StaticLinks.resolve_due`); it answers with `set_static_address`."""
        return self.static_links.resolve_due(now)

    def set_statics(self, statics: tuple[StaticNode, ...], now: float) -> bool:
        """A new list of static nodes (a reload): links to the ones configured as before keep
        what they hold, and so do the WireGuard peers and paths behind them; new ones are
        asked at once, removed ones are dropped. Whether we are a static node, and as which,
        cannot change while running (ValueError: restart). True if anything changed."""
        p = self.p.with_statics(statics)
        if p == self.p:
            return False
        self.p = p
        self.upstream.update(statics, p.own_static, now)
        if self.station is not None:
            self.station.set_statics(statics, self._me())
        self._changed(view=True)
        return True

    def set_wall_clock(self, offset: float) -> None:
        """The shell's wall clock minus its `now` (it changes when the wall clock is set):
        certificates are valid from and until a wall-clock time."""
        if self.belief.set_wall_clock(offset):
            self._changed(view=True)

    def set_cert(self, cert: bytes) -> None:
        """Our certificate, renewed (compact form); every static node hears it at once."""
        if cert != self.cert:
            self.cert = cert
            if self.hub:
                self.hub.me = self._me()
            self.client.hello_at()

    def set_shared_keys(self, shared_key: bytes, previous: Optional[bytes] = None) -> None:
        """A rotation (wire.py rule 5): speak `shared_key`, accept `previous` too."""
        self.codec.set_keys(shared_key, previous)  # a peer not answering is tried in each key
        self.client.hello_at()

    def set_trust(self, ca_public_key: Optional[bytes], revoked: frozenset[int]) -> None:
        """A changed network CA or revocation list (a reload)."""
        if self.belief.set_trust(ca_public_key, revoked):
            self._changed(view=True)

    def set_leaves(self, new: tuple[leaves.Leaf, ...]) -> None:
        """A reload's net.yaml leaves (netconfig checked them against its static nodes)."""
        if new != self.p.leaves:
            self.p = replace(self.p, leaves=new)
            if self.station is not None:
                self.station.set_leaves(new)
            self._changed(view=True)

    def set_routed_subnets(self, routed: Optional[tuple[IPv4Network, ...]]) -> None:
        """A reload's net.yaml routedSubnets (None: the private-use networks)."""
        self.p = replace(self.p, routed_subnets=routed)
        self._changed(view=True)

    def set_stats(self, stats: dict[str, PeerStats]) -> None:
        if stats != self.stats:
            self._stats_new = True  # a handshake or traffic may prove or kill a path
            self.directs.counters(self.stats, stats)
        self.stats = stats
        if self.station:
            self.station.observed(stats)

    def datagram(self, now: float, data: bytes, src: Endpoint) -> None:
        self.receive(now, data, src.host, src.port)

    def receive(self, now: float, data: bytes, host: str, port: int) -> None:
        """`datagram` for the shell: junk is dropped before anything is made for it."""
        checked = self.codec.precheck(data)
        if isinstance(checked, str):
            self.drops[checked] += 1
            return
        self._datagram(now, data, Endpoint(host, port), checked)

    def _datagram(self, now: float, data: bytes, src: Endpoint, shared: bytes) -> None:
        try:
            opened = self.codec.open(data, lambda: self.new_keys.allow(src.host, now), shared)
            if opened.msg_type == KEYREQ_TYPE:
                if self.serving is None:
                    raise Drop("rejected")  # only static nodes are asked
                self.serving.keyreq(now, opened, src)
                return
            if opened.msg_type in (m.MsgType.TABLE, m.MsgType.TABLE_DELTA):
                self.upstream.tables_from(opened)  # before decoding: only static nodes send tables
            msg = m.decode_fast(opened.msg_type, opened.body)
            self._handle(now, msg, opened, src)
        except Drop as drop:
            self.drops[drop.reason] += 1
            log.debug("dropped datagram from %s: %s", src, drop.reason)

    def tick(self, now: float) -> None:
        new_stats = self.stats if self._stats_new else None  # what WireGuard received: who is alive
        if self.station:
            for info in self.station.tick(now, new_stats):
                self.directs.drop(info.public_key)
        if self.upstream.tick(now, new_stats, self._me) or now >= self.belief.due:
            self._changed(view=True)
        self._update_view(now)
        self._drive_paths(now)
        if self.revision != self._ticked_rev or (self.hub is not None and self.hub.dirty):
            self._last_change = now
        self._ticked_rev = self.revision
        self._ticked_revs = self._revs()
        self._stats_new = False

    def next_deadline(self, now: float) -> float:
        """When the node next needs `tick` (`handle_timer`) if no input arrives: aioquic's
        get_timer. The shell sleeps until then or the next datagram; after an input that
        changed anything derived (a table, an answered PROBE, new counters) it is `now`."""
        if self._revs() != self._ticked_revs or self._stats_new:
            return now
        times = [self.upstream.next_deadline(now), self.belief.due]
        if self.serving is not None:
            times.append(self.serving.next_deadline())
        if not self.p.is_static:
            times.append(self.directs.next_deadline(now))
        return max(min(times), now)

    def handle_timer(self, now: float) -> None:
        """aioquic's name for it: run what is due."""
        self.tick(now)

    def busy(self, now: float) -> bool:
        """Something is in flux: a direct path is being probed, or the view, a path or the
        table changed within BUSY_FOR seconds. The shell then reads WireGuard's counters
        often (a handshake proves a path; a static node learns a new member's endpoint from
        them); in a settled mesh, seldom."""
        return self._probing > 0 or now - self._last_change < BUSY_FOR

    def leave(self, now: float) -> None:
        """We stop: a LEAVE to the static nodes we talk to (they drop us at once) and, on a
        static node, to its members, who then route through the other static nodes at once
        and ask for our next run every heartbeat (a restart, not a 5.5 s hub timeout)."""
        self.client.leave(self.p.name, self.p.public_key)
        if self.serving is not None:
            told = {b64(link.key) for link in self.links.values() if link.key is not None}
            self.serving.goodbye(m.Leave(self.p.name, self.p.public_key), told)

    # --- outputs ----------------------------------------------------------------------------

    def take_outgoing(self) -> list[tuple[bytes, Endpoint]]:
        out, self.out = self.out, []
        return out

    def routes_and_paths(self, now: float) -> dict[str, d.Route]:
        """For every node in view: (path kind, gateway public key or None)."""
        members = self.hub.members if self.hub else {}
        return d.routes(self.view, self.static_links, self.paths, members, now, self.p.hub_timeout)

    def desired(self, now: float) -> DesiredState:
        """Called on every tick: the last result is returned (the same object) unless the
        revision moved since (see `_changed`)."""
        revs = self._revs()
        if self._desired is None or self._desired[0] != revs:
            self._desired = (revs, self._compute_desired(now))
        return self._desired[1]

    def _compute_desired(self, now: float) -> DesiredState:
        route = self.routes_and_paths(now)
        extras = self.reach.desired(self, route)
        return d.desired_state(
            self._by_name,
            route,
            self.static_links,
            self.paths,
            now,
            self.p.static_keepalive,
            self.p.is_static,
            **extras,
        )

    def status(self, now: float) -> dict[str, Any]:
        """`wg_netmanager status --json` (status.py, reach.py)."""
        route = self.routes_and_paths(now)
        peers = peer_status(self._by_name, route, self.view, self.stats)
        doc = status_document(
            self.p, self.belief.trust.mode, self.codec, self.drops, peers, self.view, self.links, now
        )
        doc.update(self.reach.status(self, route, peers, now + self.belief.wall_offset))
        doc["mobile"] = mobile.status(self.p, self.wishes, self.view)
        return doc

    # --- internals --------------------------------------------------------------------------

    def _me(self) -> NodeInfo:
        return self.p.node_info(self.locals, self.cert, self.wishes)

    def _send(self, msg: m.Message, dst: Endpoint, key: bytes, epoch: int) -> None:
        """Seal `msg` for the node with `key` in its run `epoch`, to `dst`."""
        self._seal(*m.encode_fast(msg), dst, key, epoch)

    def _send_raw(self, data: bytes, dst: Endpoint) -> None:
        self.out.append((data, dst))

    def _seal(self, msg_type: int, body: bytes, dst: Endpoint, key: bytes, epoch: int) -> None:
        self.out.append((self.codec.seal(msg_type, body, key, epoch), dst))

    def _handle(self, now: float, msg: m.Message, opened: Opened, src: Endpoint) -> None:
        """`opened.sender` is proven (wire.py): every message is checked against it."""
        sender = b64(opened.sender)
        if isinstance(msg, m.Hello):
            if self.serving is None:
                raise Drop("rejected")  # to a node that is not static
            self.serving.hello(now, msg, opened, src)
        elif isinstance(msg, m.Probe):
            if self.probes.received(now, msg, opened, src):
                self._changed()
        elif isinstance(msg, m.Leave):
            # From a static node we talk to (it stops), or from a member of ours (it leaves).
            stops = self.client.stopping(now, msg, opened)
            member = self.hub is not None and sender in self.hub.members
            if not (stops or member):
                raise Drop("rejected")
            if stops:
                self._changed(view=True)
            if member and self.serving is not None:
                self.serving.leave(sender, msg)
        elif self.upstream.answer(now, msg, opened, src, self._me()):  # a static node's answer
            self._changed(view=True)

    # --- view and paths ---------------------------------------------------------------------

    def _update_view(self, now: float) -> None:
        if self._view_rev == self._revs(view=True):
            return
        members = [mm.info for mm in self.hub.members.values()] if self.hub else []
        self.belief.start_pass()
        view = merge_view(
            self._me(),
            self.p.subnet,
            members,
            self.static_links,
            now,
            self.p.hub_timeout,
            lambda info: self.belief.vouch(info, now) is None,
            relays=not self.p.is_static,
        )
        view = leaves.without_leaves(view, self.p.leaves)
        if self.station is not None:
            self.station.relay(view)
        view, replanned = self.reach.replan(self, view)
        if replanned:
            self._changed()
        self.belief.end_pass()
        if view != self.view:
            self.directs.follow(self.view, view)
            self.view = view
            self._by_name = sorted(view.items(), key=lambda kv: kv[1].name)
            self._changed()
            if self.active:
                self._new_wishes()
        self._view_rev = self._revs(view=True)

    def _log_rejected(self, now: float, info: NodeInfo, src: Endpoint, why: str) -> None:
        held = self.log_limit.allow(f"claim {src.host}", now)
        if held is not None:
            more = f" ({held} more held back)" if held else ""
            log.warning("rejected node %s from %s: %s%s", info.name, src, why, more)

    def _drive_paths(self, now: float) -> None:
        if self.p.is_static:
            return  # static nodes are reached on their configured endpoints
        p, active = self.p, self.active

        def allowed(info: NodeInfo) -> bool:
            return mobile.may_probe(p.mobile, p.wg_ip, active, info)

        if self.probes.drive(self.view, self.stats, self.locals, self.rng, now, allowed):
            self._changed()
        self._probing = self.directs.probing
