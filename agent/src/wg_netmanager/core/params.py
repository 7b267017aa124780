"""A node's fixed settings, as the shell builds them from its configuration."""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Optional

from . import messages as m
from .hublink import StaticNode
from .leaves import Leaf
from .model import Endpoint
from .paths import Timing


@dataclass(frozen=True)
class Params:
    name: str
    wg_ip: IPv4Address
    subnet: IPv4Network
    public_key: str = field(repr=False)
    wg_port: int
    admin_port: int
    statics: tuple[StaticNode, ...]
    # Liveness comes from WireGuard: a node and its static nodes keep each other's WireGuard
    # peers alive with `static_keepalive`, and what WireGuard received (authenticated) says
    # the other side is there. HELLOs carry what changed: every `heartbeat` while something
    # is unsettled (no answer yet, our NodeInfo or the table not in step), else every
    # `idle_heartbeat` (which also keeps the NAT mapping of the control port open).
    heartbeat: float = 1.0
    idle_heartbeat: float = 10.0
    hub_timeout: float = 5.5  # a static node neither heard nor answering this long is gone
    member_timeout: float = 10.0  # a node neither heard nor saying HELLO this long is gone
    hello_timeout: float = 25.0  # and one whose WireGuard is heard but that sends no HELLO
    static_keepalive: int = 2
    timing: Timing = Timing()
    # Static nodes a node that is not static talks to (rendezvous hashing; 0: all). Each
    # static node's table lists the whole mesh, so a few are enough, and idle traffic does
    # not grow with the number of static nodes.
    homes: int = 2
    ca_public_key: Optional[bytes] = None  # the network CA (trust.py); None: shared-key mode
    revoked: frozenset[int] = frozenset()  # certificate serials no node may use
    cert: bytes = field(default=b"", repr=False)  # our certificate, compact (trust.compact)
    subnets: tuple[IPv4Network, ...] = ()  # LAN subnets we route into the mesh (subnets.py)
    masquerade: bool = False  # and the mesh reaches them from our LAN address
    # net.yaml's routedSubnets: announced subnets are routed only within these (None: the
    # private-use networks, subnets.PRIVATE).
    routed_subnets: Optional[tuple[IPv4Network, ...]] = None
    leaves: tuple[Leaf, ...] = ()  # agent-less WireGuard peers, from net.yaml (leaves.py)
    exit_node: bool = False  # we offer the mesh our internet access (exits.py)
    use_exit: Optional[str] = None  # the exit node whose internet access we use
    mobile: bool = False  # a data-limited mobile node (mobile.py: mobile.params sets it)

    @functools.cached_property
    def is_static(self) -> bool:
        return self.own_static is not None

    @functools.cached_property
    def own_static(self) -> Optional[StaticNode]:
        """Our entry among the static nodes (config checked that its name, if any, is ours)."""
        return next((s for s in self.statics if s.wg_ip == self.wg_ip), None)

    def with_statics(self, statics: tuple[StaticNode, ...]) -> Params:
        """These settings with a reload's list of static nodes. Whether this node is a static
        node, and as which, cannot change while it runs (ValueError: restart)."""
        p = replace(self, statics=statics)
        own, was = p.own_static, self.own_static
        if (own is None) != (was is None) or (own is not None and was is not None and own.name != was.name):
            raise ValueError("whether this node is a static node changed")
        return p

    def node_info(
        self, locals_: Sequence[IPv4Interface], cert: bytes, wishes: tuple[IPv4Address, ...] = ()
    ) -> m.NodeInfo:
        """What we tell the mesh about ourselves, with our local addresses now (and, a mobile
        node, the peers it has traffic with)."""
        own = self.own_static
        endpoint = Endpoint(own.address, own.wg_port) if own and own.address else None
        return m.NodeInfo(
            self.name,
            self.wg_ip,
            self.public_key,
            self.wg_port,
            self.admin_port,
            tuple(locals_[: m.MAX_LOCALS]),
            self.is_static,
            endpoint,
            cert=cert,
            subnets=self.subnets,
            exit=self.exit_node,
            mobile=self.mobile,
            wishes=wishes,
        )


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def raw(key: str) -> bytes:
    return base64.b64decode(key)
