"""The node state machine: one per agent, sans-IO.

Inputs: datagrams (with their source), ticks, WireGuard stats, local addresses, resolved
addresses of static nodes; time is always an argument. Outputs: datagrams to send, the desired
WireGuard/route state, and a status document. The asyncio shell (io/daemon.py) and the
simulator (tests/sim) drive the very same object.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

from . import messages as m
from .hub import Hub, Member
from .messages import NodeInfo
from .model import DesiredState, Endpoint, PathKind, PeerSpec, PeerStats
from .paths import DirectPath, State, Timing
from .wire import Codec, Drop

log = logging.getLogger(__name__)

PUSH_INTERVAL = 0.5  # seconds between two pushes of a changed table
HANDSHAKE_SETTLE = 0.3  # seconds the other side gets to configure its WireGuard for us
BUSY_FOR = 5.0  # seconds after a change during which the node counts as busy
RESOLVE_EVERY = 30.0  # seconds between two look-ups of a static node's DNS name
RESOLVE_RETRY = 2.0  # the same while that static node does not answer (it may have moved)
RESOLVE_QUIET = 2.0  # seconds without an answer (two HELLOs) after which it may have moved


@functools.lru_cache(maxsize=1 << 16)
def host_network(ip: IPv4Address) -> IPv4Network:
    """`ip`/32; cached, since building an IPv4Network costs microseconds."""
    return IPv4Network((int(ip), 32))


def _net_order(net: IPv4Network) -> int:
    return int(net.network_address)


@dataclass(frozen=True)
class StaticNode:
    name: str
    wg_ip: IPv4Address
    host: str  # as configured: an IP or a DNS name (resolved by the shell)
    wg_port: int
    admin_port: int
    # False: listed without a name (the original tool's list form); it is known by its wgIp
    # and answers under whatever name it runs with.
    named: bool = True


@dataclass(frozen=True)
class Params:
    name: str
    wg_ip: IPv4Address
    subnet: IPv4Network
    public_key: str = field(repr=False)
    wg_port: int
    admin_port: int
    statics: tuple[StaticNode, ...]
    heartbeat: float = 1.0
    hub_timeout: float = 3.5  # a static node that has not answered this long is gone
    member_timeout: float = 10.0  # a node that has not said HELLO this long is gone
    static_keepalive: int = 1
    timing: Timing = Timing()

    @functools.cached_property
    def is_static(self) -> bool:
        return self.own_static is not None

    @functools.cached_property
    def own_static(self) -> Optional[StaticNode]:
        """Our entry among the static nodes (config checked that its name, if any, is ours)."""
        return next((s for s in self.statics if s.wg_ip == self.wg_ip), None)


@dataclass
class HubLink:
    """This node's view of one static node (as a client)."""

    cfg: StaticNode
    address: Optional[str] = None  # resolved IPv4 of cfg.host
    resolved_at: Optional[float] = None  # when the shell last resolved cfg.host (None: never)
    info: Optional[NodeInfo] = None
    session: int = 0
    last_ack: float = -1e9
    first_ack: Optional[float] = None  # of the current run of answers
    version: int = 0  # version of its table we hold
    table: dict[str, NodeInfo] = field(default_factory=dict)  # by public key
    pending: dict[int, m.TableChunk] = field(default_factory=dict)
    pending_version: tuple[int, int] = (0, 0)  # (version, base) of the chunks in `pending`

    def alive(self, now: float, timeout: float) -> bool:
        return now - self.last_ack <= timeout


class Node:
    def __init__(self, params: Params, shared_key: bytes, now: float, rng: random.Random) -> None:
        self.p = params
        self.rng = rng
        self.codec = Codec(shared_key, rng.getrandbits(64))
        self.drops: Counter[str] = Counter(
            {r: 0 for r in ("foreign", "truncated", "forged", "replayed", "stale", "malformed", "rejected")}
        )
        self.locals: list[IPv4Interface] = []
        self.links = {s.name: HubLink(s) for s in params.statics if s is not params.own_static}
        self._link_at = {link.cfg.wg_ip: link for link in self.links.values()}
        for link in self.links.values():
            try:
                link.address = str(IPv4Address(link.cfg.host))
            except ValueError:
                pass  # a DNS name: the shell resolves it
        me = self._me()
        self.hub = (
            Hub(
                me,
                params.subnet,
                {s.wg_ip: s.name if s.named else None for s in params.statics},
                params.member_timeout,
            )
            if params.is_static
            else None
        )
        self.paths: dict[str, DirectPath] = {}  # by public key, non-static peers only
        self.stats: dict[str, PeerStats] = {}
        self.view: dict[str, NodeInfo] = {}  # every other node we know, by public key
        self._by_name: list[tuple[str, NodeInfo]] = []  # self.view's items, by name
        self._view_inputs: Optional[tuple[Any, ...]] = None  # what self.view was built from
        self._desired: Optional[DesiredState] = None
        self._probing = 0  # paths in the PROBING state after the last tick
        self._last_change = now
        self._desired_stale = True
        self.out: list[tuple[bytes, Endpoint]] = []
        self.next_heartbeat = now
        self.last_push = -1e9
        self.started = now

    # --- inputs -----------------------------------------------------------------------------

    def set_locals(self, addrs: list[IPv4Interface]) -> None:
        addrs = sorted(a for a in addrs if a.ip not in self.p.subnet)
        if addrs != self.locals:
            if self.locals:  # we moved: our direct paths are probably gone
                for path in self.paths.values():
                    path.restart()
            self.locals = addrs
            self._desired_stale = True
            if self.hub:
                self.hub.me = self._me()
            self.next_heartbeat = 0.0  # tell the static nodes at once (roaming)

    def set_static_address(self, name: str, address: Optional[str], now: float) -> None:
        """The shell's answer for a static node's DNS name. None: the look-up failed; the
        last address found stays (a DNS hiccup must not cut us off a node that did not move)."""
        link = self.links.get(name)
        if link is not None:
            if address is not None and address != link.address:
                link.address = address
                self.next_heartbeat = now  # it moved: say HELLO there now, not a second later
            link.resolved_at = now

    def resolve_due(self, now: float) -> list[tuple[str, str]]:
        """(name, host) of the static nodes given by DNS name whose address the shell should
        look up now: every RESOLVE_EVERY seconds, and every RESOLVE_RETRY seconds once the
        node has not answered for RESOLVE_QUIET (two HELLOs). A dynamic-DNS node that moved
        is then found again before `hub_timeout`, so its table, and the paths between members
        learnt from it, are never dropped. The shell answers with `set_static_address`."""
        due = []
        for name, link in self.links.items():
            if link.resolved_at is None and link.address is not None:
                continue  # configured as an IP address
            every = RESOLVE_EVERY if link.alive(now, RESOLVE_QUIET) else RESOLVE_RETRY
            if link.resolved_at is None or now - link.resolved_at >= every:
                due.append((name, link.cfg.host))
        return due

    def set_stats(self, stats: dict[str, PeerStats]) -> None:
        self.stats = stats
        if self.hub:
            for key, st in stats.items():
                self.hub.observed(key, st.endpoint)

    def datagram(self, now: float, data: bytes, src: Endpoint) -> None:
        try:
            opened = self.codec.open(data, now)
            msg = m.decode_fast(opened.msg_type, opened.body)
            self._handle(now, msg, opened.session, src)
        except Drop as d:
            self.drops[d.reason] += 1
            log.debug("dropped datagram from %s: %s", src, d.reason)

    def tick(self, now: float) -> None:
        if self.hub:
            for info in self.hub.expire(now):
                self.paths.pop(info.public_key, None)
            self._maybe_push(now)
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.p.heartbeat
            hello = m.Hello(self._me(), 0)
            for link in self.links.values():
                if link.address:
                    self._send(
                        m.Hello(hello.node, link.version), Endpoint(link.address, link.cfg.admin_port), now
                    )
        self._merge_view(now)
        self._drive_paths(now)
        if self._desired_stale or (self.hub is not None and self.hub.dirty):
            self._last_change = now

    def busy(self, now: float) -> bool:
        """Something is in flux: a direct path is being probed, or the view, a path or the
        table changed within BUSY_FOR seconds. The shell then reads WireGuard's counters
        often (a handshake proves a path; a static node learns a new member's endpoint from
        them); in a settled mesh, seldom."""
        return self._probing > 0 or now - self._last_change < BUSY_FOR

    def leave(self, now: float) -> None:
        for link in self.links.values():
            if link.address:
                self._send(
                    m.Leave(self.p.name, self.p.public_key), Endpoint(link.address, link.cfg.admin_port), now
                )

    # --- outputs ----------------------------------------------------------------------------

    def take_outgoing(self) -> list[tuple[bytes, Endpoint]]:
        out, self.out = self.out, []
        return out

    def routes_and_paths(self, now: float) -> dict[str, tuple[PathKind, Optional[str]]]:
        """For every node in view: (path kind, gateway public key or None)."""
        result: dict[str, tuple[PathKind, Optional[str]]] = {}
        for key, info in self.view.items():
            result[key] = self._path_to(key, info, now)
        return result

    def desired(self, now: float) -> DesiredState:
        """Called on every tick: the last result is returned (the same object) unless an input
        changed since: the view or a static link (`_merge_view`), a direct path's state, kind,
        endpoint or generation (`_drive_paths`, PROBE answers), the local addresses."""
        if self._desired is None or self._desired_stale:
            self._desired = self._compute_desired(now)
            self._desired_stale = False
        return self._desired

    def _compute_desired(self, now: float) -> DesiredState:
        # Kept linear in the number of nodes with small constants (no address parsing, no
        # sorting of address objects): at 1000 nodes this is the agent's main cost.
        routes = self.routes_and_paths(now)
        allowed: dict[str, list[IPv4Network]] = {k: [] for k in self.view}
        for key, (kind, gw) in routes.items():
            target = gw if kind == PathKind.GATEWAY else key
            if kind != PathKind.NONE and target in allowed:
                allowed[target].append(host_network(self.view[key].wg_ip))
        peers = []
        for key, info in self._by_name:
            endpoint, keepalive = None, 0
            if info.static:
                endpoint, keepalive = self._static_endpoint(info), self._static_keepalive(info, now)
            generation = 0
            if not info.static and key in self.paths:
                path = self.paths[key]
                endpoint, keepalive, generation = path.wg_endpoint(), path.wg_keepalive(), path.generation
            nets = allowed[key]
            if len(nets) > 1:
                nets.sort(key=_net_order)
            peers.append(PeerSpec(key, endpoint, tuple(nets), keepalive, generation))
        # No routes: every node in the view has its wgIp inside the mesh subnet (_merge_view),
        # and every backend gives the interface the wgIp with the subnet's prefix, whose
        # connected route sends them all into WireGuard (one no peer has is dropped there:
        # fail closed). A /32 per peer cost a netlink round trip per change and, at 50 nodes,
        # most of an agent's CPU while the mesh formed.
        return DesiredState(tuple(peers), (), forwarding=self.p.is_static)

    def status(self, now: float) -> dict[str, Any]:
        routes = self.routes_and_paths(now)
        peers = []
        for key, info in self._by_name:
            kind, gw = routes[key]
            st = self.stats.get(key)
            peers.append(
                {
                    "name": info.name,
                    "wgIp": str(info.wg_ip),
                    "publicKey": key,
                    "path": kind.value,
                    "gateway": self.view[gw].name if gw and gw in self.view else None,
                    "endpoint": str(st.endpoint) if st and st.endpoint else None,
                    "lastHandshake": st.last_handshake if st else 0.0,
                    "rxBytes": st.rx_bytes if st else 0,
                    "txBytes": st.tx_bytes if st else 0,
                }
            )
        return {
            "name": self.p.name,
            "wgIp": str(self.p.wg_ip),
            "publicKey": self.p.public_key,
            "static": self.p.is_static,
            "converged": bool(peers) and all(p["path"] != "none" for p in peers),
            "drops": dict(self.drops),
            "peers": peers,
        }

    # --- internals --------------------------------------------------------------------------

    def _me(self) -> NodeInfo:
        endpoint, s = None, self.p.own_static
        if s is not None:
            try:
                endpoint = Endpoint(str(IPv4Address(s.host)), s.wg_port)
            except ValueError:
                endpoint = None
        return NodeInfo(
            self.p.name,
            self.p.wg_ip,
            self.p.public_key,
            self.p.wg_port,
            self.p.admin_port,
            tuple(self.locals[: m.MAX_LOCALS]),
            self.p.is_static,
            endpoint,
        )

    def _send(self, msg: m.Message, dst: Endpoint, now: float) -> None:
        t, body = m.encode_fast(msg)
        self.out.append((self.codec.seal(t, body, now), dst))

    def _send_update(self, member: Member, now: float) -> None:
        """What a member lacks of our table (the changes since the version it holds, or the
        table); afterwards it holds the current version (if this is lost, its next HELLO
        says so)."""
        assert self.hub is not None and member.admin is not None
        for t, body in self.hub.encoded_update(member.table_version):  # encoded once per version
            self.out.append((self.codec.seal(t, body, now), member.admin))
        member.table_version = self.hub.version

    def _handle(self, now: float, msg: m.Message, session: int, src: Endpoint) -> None:
        if isinstance(msg, m.Hello):
            if self.hub is None:
                raise Drop("rejected")  # only static nodes serve tables
            why = self.hub.check_claim(msg.node)
            if why:
                log.warning("rejected node %s from %s: %s", msg.node.name, src, why)
                raise Drop("rejected")
            self.hub.hello(msg.node, now, src, msg.table_version)
            pushed = self._maybe_push(now, before=src)
            self._send(m.HelloAck(self.hub.me, self.hub.version), src, now)
            if not pushed and msg.table_version != self.hub.version:
                self._send_update(self.hub.members[msg.node.public_key], now)
        elif isinstance(msg, m.HelloAck):
            link = self._link_for(msg.node)
            if link is None:
                raise Drop("rejected")
            if (
                link.info is not None
                and link.info.public_key != msg.node.public_key
                and link.alive(now, self.p.hub_timeout)
            ):
                raise Drop("rejected")
            if link.first_ack is None or not link.alive(now, self.p.hub_timeout) or link.session != session:
                link.first_ack = now
            if link.session != session:
                # A restarted static node counts its table versions from 1 again: what we hold
                # says nothing about its new ones. Version 0 in our HELLO asks for the table.
                link.version = 0
            link.info, link.session, link.last_ack = msg.node, session, now
        elif isinstance(msg, m.TableChunk):
            link = next((lk for lk in self.links.values() if lk.session == session), None)
            if link is None:
                raise Drop("rejected")
            if (msg.version, msg.base) != link.pending_version:
                link.pending, link.pending_version = {}, (msg.version, msg.base)
            link.pending[msg.index] = msg
            if len(link.pending) == msg.count and all(c.count == msg.count for c in link.pending.values()):
                chunks = [link.pending[i] for i in range(msg.count)]
                link.pending, link.pending_version = {}, (0, 0)
                if msg.base == 0:
                    link.table = {e.public_key: e for c in chunks for e in c.entries}
                elif msg.base == link.version:
                    table = dict(link.table)
                    for c in chunks:
                        for key in c.removed:
                            table.pop(key, None)
                    for c in chunks:
                        table.update((e.public_key, e) for e in c.entries)
                    link.table = table
                else:
                    return  # changes to a version we do not hold; our next HELLO says which we do
                link.version = msg.version
        elif isinstance(msg, m.Probe):
            if msg.ack:
                path = self.paths.get(msg.public_key)
                if path is not None and path.nonce == msg.nonce:
                    path.probe_answered(src)
                    self._desired_stale = True
            else:
                self._send(m.Probe(self.p.name, self.p.public_key, msg.nonce, ack=True), src, now)
        elif isinstance(msg, m.Leave) and self.hub is not None:
            member = self.hub.members.get(msg.public_key)
            if member and member.info.name == msg.name:
                log.info("node %s left", msg.name)
                self.hub.leave(msg.public_key)

    def _maybe_push(self, now: float, before: Optional[Endpoint] = None) -> bool:
        """Publish a changed table to every member at once, rather than at their next HELLO,
        but at most every PUSH_INTERVAL: a push costs members x chunks datagrams, and while
        many nodes join the table changes with nearly every HELLO."""
        assert self.hub is not None
        if not self.hub.dirty or now - self.last_push < PUSH_INTERVAL:
            return False
        self.hub.commit()
        self.last_push = now
        if before is not None:  # the HELLO's sender learns the new version first, then the rest
            self._send(m.HelloAck(self.hub.me, self.hub.version), before, now)
        for member in self.hub.members.values():
            if member.admin is not None:
                self._send_update(member, now)
        return True

    def _link_for(self, info: NodeInfo) -> Optional[HubLink]:
        """The static link whose node `info` claims to be: its wgIp, and its name if it has one."""
        link = self._link_at.get(info.wg_ip)
        return link if link is not None and (not link.cfg.named or link.cfg.name == info.name) else None

    def _view_fingerprint(self, now: float) -> tuple[Any, ...]:
        """Everything `_merge_view` reads; when it is unchanged, so is the view."""
        return (
            self.hub.revision if self.hub else -1,
            tuple(
                (
                    lk.alive(now, self.p.hub_timeout),
                    lk.info,
                    lk.address,
                    lk.version,
                    id(lk.table),
                    self._static_keepalive_for(lk, now),
                )
                for lk in self.links.values()
            ),
        )

    def _merge_view(self, now: float) -> None:
        inputs = self._view_fingerprint(now)
        if inputs == self._view_inputs:
            return
        self._view_inputs = inputs
        self._desired_stale = True
        view: dict[str, NodeInfo] = {}
        taken_ips = {self.p.wg_ip}
        taken_names = {self.p.name}
        sources: list[NodeInfo] = []
        if self.hub:
            sources += [mm.info for mm in self.hub.members.values()]
        for name in sorted(self.links):
            link = self.links[name]
            if link.alive(now, self.p.hub_timeout) and link.info:
                sources.append(replace(link.info, static=True, endpoint=self._static_endpoint(link.info)))
                sources += list(link.table.values())
        for info in sources:
            if info.public_key == self.p.public_key or info.public_key in view:
                continue
            if info.wg_ip not in self.p.subnet or info.wg_ip in taken_ips or info.name in taken_names:
                continue
            view[info.public_key] = info
            taken_ips.add(info.wg_ip)
            taken_names.add(info.name)
        for key in list(self.paths):
            path = self.paths[key]
            if key not in view:
                del self.paths[key]
            elif view[key] != path.peer:
                old, path.peer = path.peer, view[key]
                # It moved, or its NAT mapping changed (which a LAN path does not use), or we
                # just learnt where it is: start over at once.
                moved = old.locals != path.peer.locals
                remapped = old.endpoint != path.peer.endpoint and path.kind != PathKind.LAN
                if moved or remapped:
                    path.restart()
        self.view = view
        self._by_name = sorted(view.items(), key=lambda kv: kv[1].name)

    def _drive_paths(self, now: float) -> None:
        if self.p.is_static:
            return  # static nodes are reached on their configured endpoints
        probing = 0
        for key, info in self.view.items():
            if info.static:
                continue
            path = self.paths.get(key)
            if path is None:
                path = self.paths[key] = DirectPath(info, self.p.timing)
            before = path.state
            shape = (path.state, path.kind, path.endpoint, path.generation)
            path.mine = self.locals
            path.update(now, self.stats.get(key))
            if path.wants_retry(now):
                path.start(now, self.rng.getrandbits(48), self.stats.get(key), self.locals)
                log.info(
                    "path to %s: probing (WireGuard endpoint %s, local addresses %s)",
                    info.name,
                    path.endpoint,
                    ", ".join(t.host for t in path.probe_targets) or "none",
                )
            elif path.state != before:
                if path.is_up:
                    log.info("path to %s: %s via %s", info.name, path.kind.value, self.stats[key].endpoint)
                else:
                    log.info("path to %s: no direct path, next try in %.0fs", info.name, path.retry_delay)
            for dst in path.due_probes(now):
                self._send(m.Probe(self.p.name, self.p.public_key, path.nonce), dst, now)
            if shape != (path.state, path.kind, path.endpoint, path.generation):
                self._desired_stale = True
            probing += path.state == State.PROBING
        self._probing = probing

    def _static_keepalive(self, info: NodeInfo, now: float) -> int:
        """Keepalive toward a static node; it starts the handshake, so hold it back until the
        static node has had a moment to add us to its WireGuard (a handshake it drops costs
        WireGuard's 5 s retry)."""
        link = self._link_at.get(info.wg_ip)
        return 0 if link is None else self._static_keepalive_for(link, now)

    def _static_keepalive_for(self, link: HubLink, now: float) -> int:
        if link.first_ack is None or now - link.first_ack < HANDSHAKE_SETTLE:
            return 0
        return self.p.static_keepalive

    def _static_endpoint(self, info: NodeInfo) -> Optional[Endpoint]:
        link = self._link_at.get(info.wg_ip)
        if link is None or link.address is None:
            return info.endpoint
        return Endpoint(link.address, link.cfg.wg_port)

    def _path_to(self, key: str, info: NodeInfo, now: float) -> tuple[PathKind, Optional[str]]:
        if info.static:
            link = self._link_at.get(info.wg_ip)
            return (
                (PathKind.STATIC, None)
                if link and link.alive(now, self.p.hub_timeout)
                else (PathKind.NONE, None)
            )
        if self.hub and key in self.hub.members:
            return PathKind.STATIC, None
        path = self.paths.get(key)
        if path is not None and path.is_up:
            return path.kind, None
        for name in sorted(self.links):
            link = self.links[name]
            if (
                link.info
                and link.alive(now, self.p.hub_timeout)
                and key in link.table
                and link.info.public_key in self.view
            ):
                return PathKind.GATEWAY, link.info.public_key
        return PathKind.NONE, None
