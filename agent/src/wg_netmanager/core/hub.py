"""The part of a static (public) node that keeps its members: who they are, what they may
claim, when they expire, and the table made from them.

Every node sends a HELLO to its home static nodes once per heartbeat. A static node keeps the
senders as members, replaces the endpoint they claim with the one its own WireGuard observed
(what NAT traversal needs), and answers with its table version. Changes are published in
batches (`commit`, at most every PUSH_INTERVAL): each member gets what changed since the
version it holds (usually one datagram), or the whole table, in datagram-sized chunks, when
it holds none or one too old. A member expires when neither its HELLOs nor its WireGuard
(keepalives, counted by our WireGuard) were heard for `member_timeout` seconds, or its
HELLOs stopped for `hello_timeout`. The versions, their changes and the bytes each member is
sent are published.py's.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Optional

from .messages import NodeInfo, TableChunk
from .mobile import MEMBER_TIMEOUT as MOBILE_MEMBER_TIMEOUT
from .model import Endpoint, PeerStats
from .published import Published

log = logging.getLogger(__name__)

# Members whose HELLOs come from one address (a home router's NAT): plenty for a household or
# an office, and a member faking identities from one box cannot fill the table.
MAX_PER_SOURCE = 64


@dataclass
class Member:
    info: NodeInfo
    last_seen: float
    observed: Optional[Endpoint] = None
    admin: Optional[Endpoint] = None  # where its HELLOs come from: where to push the table
    table_version: int = 0  # the version of our table it holds, as far as we know
    claim: Optional[NodeInfo] = None  # its NodeInfo as its last whole HELLO said (and its run)
    digest: bytes = b""  # of that NodeInfo as it sent it (messages.digest)
    last_rx: float = -1e9  # when our WireGuard last received from it (authenticated)
    rx_bytes: Optional[int] = None  # our WireGuard peer's receive counter, as last read

    def expires(self, member_timeout: float, hello_timeout: float) -> float:
        """Neither heard nor a HELLO for `member_timeout`, or no HELLO for `hello_timeout`
        (its WireGuard runs, its agent says nothing); a mobile node says HELLO seldom."""
        if self.info.mobile:
            member_timeout = hello_timeout = max(member_timeout, MOBILE_MEMBER_TIMEOUT)
        return min(max(self.last_seen, self.last_rx) + member_timeout, self.last_seen + hello_timeout)


@functools.lru_cache(maxsize=1 << 14)
def _as_relayed(info: NodeInfo) -> NodeInfo:
    return replace(info, relayed=True)


class Hub:
    def __init__(
        self,
        me: NodeInfo,
        subnet: IPv4Network,
        statics: dict[IPv4Address, Optional[str]],
        member_timeout: float,
        hello_timeout: float = math.inf,
    ) -> None:
        self._me = me
        self.subnet = subnet
        # Configured static nodes: wgIp -> name (None: listed without one, so any name goes).
        self.statics = statics
        self._static_names = {name: ip for ip, name in statics.items() if name is not None}
        self.member_timeout = member_timeout
        self.hello_timeout = hello_timeout
        # Leaves (leaves.py): their addresses and keys by name, no node's to claim.
        self.leaves: dict[str, str] = {}
        self.members: dict[str, Member] = {}  # by public key
        # Other static nodes' members (and those static nodes), passed on to ours: every table
        # lists the whole mesh, so a node needs to talk to only a few static nodes.
        self.relayed: dict[str, NodeInfo] = {}
        self.published = Published(me)
        self.revision = 0  # bumped on every change of the members' information
        # Members' wgIps and names -> public key, and members per source address: kept as
        # members come and go, since every HELLO is checked against them (rebuilding them
        # per change made a static node's load quadratic in the members).
        self._by_ip: dict[IPv4Address, str] = {}
        self._by_name: dict[str, str] = {}
        self._per_source: Counter[str] = Counter()
        self._dirty = False

    def set_statics(self, statics: dict[IPv4Address, Optional[str]]) -> None:
        """A new list of static nodes (a reload). A member whose claim it now contradicts (it
        holds a static node's address, or a static node's name at another address) goes; it
        is refused if it says HELLO again."""
        if statics == self.statics:
            return
        self.statics = statics
        self._static_names = {name: ip for ip, name in statics.items() if name is not None}
        for key, member in list(self.members.items()):
            if self.check_claim(member.info) is not None:
                log.info("node %s (%s) dropped: it is not a static node", member.info.name, member.info.wg_ip)
                self.leave(key)
            elif member.info.static != (member.info.wg_ip in statics):
                static = not member.info.static  # as `hello` would set it
                endpoint = member.info.endpoint if static else member.observed
                member.info = replace(member.info, static=static, endpoint=endpoint)
                self._changed()

    @property
    def me(self) -> NodeInfo:
        return self._me

    @me.setter
    def me(self, info: NodeInfo) -> None:
        if info != self._me:  # e.g. our local addresses changed: publish it
            self._me = info
            self._changed()

    def check_claim(self, info: NodeInfo, src: Optional[Endpoint] = None) -> Optional[str]:
        """Why `info` (from `src`) must not be accepted, or None. Addresses are the attack
        surface."""
        if info.wg_ip not in self.subnet or info.wg_ip in (
            self.subnet.network_address,
            self.subnet.broadcast_address,
        ):
            return f"wgIp {info.wg_ip} outside subnet {self.subnet}"
        if info.public_key == self.me.public_key:
            return "uses this node's public key"
        if info.wg_ip == self.me.wg_ip or info.name == self.me.name:
            return f"claims this node's address {info.wg_ip} or name {info.name}"
        configured = self._static_names.get(info.name)
        if configured is not None and configured != info.wg_ip:
            return f"static node {info.name} must have wgIp {configured}"
        if configured is None and self.statics.get(info.wg_ip) is not None:
            return f"wgIp {info.wg_ip} belongs to a static node"
        leaf = self.leaves.get(str(info.wg_ip)) or self.leaves.get(info.public_key)
        if leaf is not None:
            return f"the address or key of leaf {leaf}"
        if self._by_ip.get(info.wg_ip, info.public_key) != info.public_key or (
            self._by_name.get(info.name, info.public_key) != info.public_key
        ):
            return f"wgIp {info.wg_ip} or name {info.name} is used by a live node"
        if (
            src is not None
            and info.public_key not in self.members
            and self._per_source[src.host] >= MAX_PER_SOURCE
        ):
            return f"{MAX_PER_SOURCE} members already speak from {src.host}"
        return None

    def _index(self, key: str, m: Member, add: bool) -> None:
        if add:
            self._by_ip[m.info.wg_ip], self._by_name[m.info.name] = key, key
            if m.admin is not None:
                self._per_source[m.admin.host] += 1
            return
        if self._by_ip.get(m.info.wg_ip) == key:
            del self._by_ip[m.info.wg_ip]
        if self._by_name.get(m.info.name) == key:
            del self._by_name[m.info.name]
        if m.admin is not None:
            self._per_source[m.admin.host] -= 1
            if self._per_source[m.admin.host] <= 0:
                del self._per_source[m.admin.host]

    def hello(
        self, info: NodeInfo, now: float, src: Optional[Endpoint] = None, table_version: Optional[int] = None
    ) -> None:
        """Record a member's (already checked) HELLO, which names the table version it holds."""
        static = info.wg_ip in self.statics
        key = info.public_key
        m = self.members.get(key)
        if m is None:
            log.info("node %s (%s) joined", info.name, info.wg_ip)
            m = Member(info, now)
            self.members[key] = m
            self._changed()
        else:
            self._index(key, m, add=False)
        m.last_seen = now
        m.admin = src or m.admin
        if table_version is not None:
            m.table_version = table_version
        # Static nodes keep their configured endpoint; the others get what our WireGuard saw.
        info = replace(info, static=static, endpoint=info.endpoint if static else m.observed)
        if info != m.info:
            m.info = info
            self._changed()
        self._index(key, m, add=True)

    def leave(self, public_key: str) -> None:
        m = self.members.pop(public_key, None)
        if m is not None:
            self._index(public_key, m, add=False)
            self._changed()

    def observed(self, public_key: str, endpoint: Optional[Endpoint]) -> None:
        m = self.members.get(public_key)
        if m is None or endpoint is None or m.observed == endpoint or m.info.static:
            return
        if ":" in endpoint.host:
            return  # WireGuard saw it over IPv6: the table (and the mesh's NAT paths) are IPv4
        m.observed = endpoint
        m.info = replace(m.info, endpoint=endpoint)
        self._changed()

    def counters(self, stats: Mapping[str, PeerStats], now: float) -> None:
        """WireGuard's counters as read: a member whose peer received is alive."""
        for key, st in stats.items():
            m = self.members.get(key)
            if m is not None:
                if m.rx_bytes is not None and st.rx_bytes != m.rx_bytes:
                    m.last_rx = now
                m.rx_bytes = st.rx_bytes

    def expire(self, now: float) -> list[NodeInfo]:
        timeouts = (self.member_timeout, self.hello_timeout)
        gone = [k for k, m in self.members.items() if now > m.expires(*timeouts)]
        infos = []
        for k in gone:
            m = self.members.pop(k)
            self._index(k, m, add=False)
            infos.append(m.info)
        for info in infos:
            log.info("node %s (%s) timed out", info.name, info.wg_ip)
        if infos:
            self._changed()
        return infos

    def next_expiry(self) -> float:
        """When the next member times out if it says nothing (inf: no members)."""
        timeouts = (self.member_timeout, self.hello_timeout)
        return min((m.expires(*timeouts) for m in self.members.values()), default=math.inf) + 1e-6

    def set_relayed(self, entries: dict[str, NodeInfo]) -> None:
        if entries != self.relayed:
            self.relayed = entries
            self._changed()

    def _changed(self) -> None:
        self._dirty = True
        self.revision += 1

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def version(self) -> int:
        """The version of the table as published (`commit`)."""
        return self.published.version

    def commit(self) -> bool:
        """Bump the version once per batch of changes; True if it changed."""
        if not self._dirty:
            return False
        self.published.publish(self.entries())
        self._dirty = False
        return True

    def entries(self) -> list[NodeInfo]:
        """The live table (including changes not committed yet)."""
        own = sorted((m.info for m in self.members.values()), key=lambda i: i.name)
        relayed = [
            _as_relayed(e)
            for k, e in sorted(self.relayed.items())
            if k not in self.members and k != self.me.public_key
        ]
        return [self.me, *own, *relayed]

    # What members are told of the table as published (published.py).

    def chunks(self) -> list[TableChunk]:
        return self.published.chunks()

    def encoded_chunks(self) -> list[tuple[int, bytes]]:
        return self.published.encoded_chunks()

    def encoded_update(self, held: int) -> list[tuple[int, bytes]]:
        return self.published.encoded_update(held)
