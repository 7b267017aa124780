"""The part of a static (public) node that serves the node table to everyone else.

Every node sends a HELLO to every static node once per heartbeat. A static node keeps the
senders as members, replaces the endpoint they claim with the one its own WireGuard observed
(what NAT traversal needs), and answers with its table version; a node holding an older
version gets the whole table again, in datagram-sized chunks. Members that stop sending
expire after `member_timeout` seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Optional

from .messages import NodeInfo, TableChunk, chunk_table, encode
from .model import Endpoint

log = logging.getLogger(__name__)


@dataclass
class Member:
    info: NodeInfo
    last_seen: float
    observed: Optional[Endpoint] = None
    admin: Optional[Endpoint] = None  # where its HELLOs come from: where to push the table


class Hub:
    def __init__(
        self,
        me: NodeInfo,
        subnet: IPv4Network,
        static_ips: dict[str, IPv4Address],
        member_timeout: float,
    ) -> None:
        self.me = me
        self.subnet = subnet
        self.static_ips = static_ips  # configured static nodes: name -> wgIp
        self.member_timeout = member_timeout
        self.members: dict[str, Member] = {}  # by public key
        self.version = 1
        self.revision = 0  # bumped on every change of the members' information
        self._claims_rev = -1
        self._claims_index: tuple[dict[IPv4Address, str], dict[str, str]] = ({}, {})
        self._dirty = False
        self._chunks: Optional[list[TableChunk]] = None
        self._encoded: Optional[list[tuple[int, bytes]]] = None

    def check_claim(self, info: NodeInfo) -> Optional[str]:
        """Why `info` must not be accepted, or None. Addresses are the attack surface."""
        if info.wg_ip not in self.subnet or info.wg_ip in (
            self.subnet.network_address,
            self.subnet.broadcast_address,
        ):
            return f"wgIp {info.wg_ip} outside subnet {self.subnet}"
        if info.public_key == self.me.public_key:
            return "uses this node's public key"
        if info.wg_ip == self.me.wg_ip or info.name == self.me.name:
            return f"claims this node's address {info.wg_ip} or name {info.name}"
        configured = self.static_ips.get(info.name)
        if configured is not None and configured != info.wg_ip:
            return f"static node {info.name} must have wgIp {configured}"
        if configured is None and info.wg_ip in self.static_ips.values():
            return f"wgIp {info.wg_ip} belongs to a static node"
        by_ip, by_name = self._claims()
        if by_ip.get(info.wg_ip, info.public_key) != info.public_key or (
            by_name.get(info.name, info.public_key) != info.public_key
        ):
            return f"wgIp {info.wg_ip} or name {info.name} is used by a live node"
        return None

    def _claims(self) -> tuple[dict[IPv4Address, str], dict[str, str]]:
        """Members' wgIps and names -> public key; rebuilt only after a change, as every HELLO
        is checked against it (a scan per HELLO made a static node's load quadratic)."""
        if self._claims_rev != self.revision:
            self._claims_index = (
                {m.info.wg_ip: k for k, m in self.members.items()},
                {m.info.name: k for k, m in self.members.items()},
            )
            self._claims_rev = self.revision
        return self._claims_index

    def hello(self, info: NodeInfo, now: float, src: Optional[Endpoint] = None) -> None:
        """Record a member's (already checked) HELLO."""
        static = info.name in self.static_ips
        m = self.members.get(info.public_key)
        if m is None:
            log.info("node %s (%s) joined", info.name, info.wg_ip)
            m = Member(info, now)
            self.members[info.public_key] = m
            self._changed()
        m.last_seen = now
        m.admin = src or m.admin
        # Static nodes keep their configured endpoint; the others get what our WireGuard saw.
        info = replace(info, static=static, endpoint=info.endpoint if static else m.observed)
        if info != m.info:
            m.info = info
            self._changed()

    def leave(self, public_key: str) -> None:
        if self.members.pop(public_key, None) is not None:
            self._changed()

    def observed(self, public_key: str, endpoint: Optional[Endpoint]) -> None:
        m = self.members.get(public_key)
        if m is None or endpoint is None or m.observed == endpoint or m.info.static:
            return
        m.observed = endpoint
        m.info = replace(m.info, endpoint=endpoint)
        self._changed()

    def expire(self, now: float) -> list[NodeInfo]:
        gone = [k for k, m in self.members.items() if now - m.last_seen > self.member_timeout]
        infos = [self.members.pop(k).info for k in gone]
        for info in infos:
            log.info("node %s (%s) timed out", info.name, info.wg_ip)
        if infos:
            self._changed()
        return infos

    def _changed(self) -> None:
        self._dirty = True
        self.revision += 1

    @property
    def dirty(self) -> bool:
        return self._dirty

    def commit(self) -> bool:
        """Bump the version once per batch of changes; True if it changed."""
        if not self._dirty:
            return False
        self.version += 1
        self._chunks = None
        self._encoded = None
        self._dirty = False
        return True

    def entries(self) -> list[NodeInfo]:
        return [self.me] + sorted((m.info for m in self.members.values()), key=lambda i: i.name)

    def chunks(self) -> list[TableChunk]:
        if self._chunks is None:
            self._chunks = chunk_table(self.version, self.entries())
        return self._chunks

    def encoded_chunks(self) -> list[tuple[int, bytes]]:
        """`chunks()` as (message type, body): every member asking for the table gets the
        same bytes, so they are encoded once per version instead of once per request."""
        if self._encoded is None:
            self._encoded = [encode(c) for c in self.chunks()]
        return self._encoded
