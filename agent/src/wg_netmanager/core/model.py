"""Types shared by the sans-IO core, the IO shell and the backends.

Nothing here touches the system. The core computes a `DesiredState`; a backend reconciles the
WireGuard interface and the routes to it and reports `PeerStats` back.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

# A node holds one PeerSpec, PeerStats and DirectPath per peer (a simulation, N per node):
# __slots__ where the language has them for dataclasses (3.10), plain classes before.
SLOTS: dict[str, Any] = {"slots": True} if sys.version_info >= (3, 10) else {}

# WireGuard sends a handshake initiation at most once per REKEY_TIMEOUT (5 s), and both sides
# of a pair start a direct-path attempt at about the same time: a handshake this recent is this
# attempt's (the backend keeps such a peer rather than make it afresh, backends/reconcile.py;
# a path that starts over counts it, core/paths.py).
HANDSHAKE_HOLD = 5.0  # seconds, wireguard-go's REKEY_TIMEOUT


class PathKind(str, enum.Enum):
    """How a peer is reached. Same strings in status JSON, Ansible facts and the picture."""

    STATIC = "static"  # a public node with a configured endpoint (or the link to one)
    LAN = "lan"  # direct, on a local address of the peer
    NAT = "nat"  # direct, hole-punched through NAT
    GATEWAY = "gateway"  # through another node
    NONE = "none"  # not reachable (yet)


@dataclass(frozen=True, **SLOTS)
class Endpoint:
    host: str  # an IPv4 address (the core only deals with resolved addresses)
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, **SLOTS)
class PeerSpec:
    """What one WireGuard peer should look like."""

    public_key: str  # base64
    endpoint: Optional[Endpoint]  # None: let the peer initiate
    allowed_ips: tuple[IPv4Network, ...]
    keepalive: int = 0  # persistent keepalive seconds, 0 = off
    # A new value makes the backend re-create the peer, unless its last handshake is only
    # seconds old (backends.reconcile.plan_peers). wireguard-go sends no handshake initiation
    # within 5 s of the previous one, even one that had nowhere to go; a fresh peer sends its
    # first one the moment its keepalive is turned on (hole punching).
    generation: int = 0


@dataclass(frozen=True)
class DesiredState:
    """The whole interface configuration the core wants, apart from the private key."""

    peers: tuple[PeerSpec, ...] = ()
    routes: tuple[IPv4Network, ...] = ()  # routes via the WireGuard interface
    forwarding: bool = False  # this node relays for others (a gateway)
    gateway_for: tuple[IPv4Network, ...] = ()  # the LAN subnets it routes into the mesh
    masquerade: bool = False  # and packets from the mesh reach them from its LAN address
    exit_via: bool = False  # its internet traffic goes into the tunnel (to an exit node)
    exit_offer: bool = False  # it is an exit node: what comes from the mesh goes out, masqueraded


@dataclass(frozen=True, **SLOTS)
class PeerStats:
    """What the backend reads back for one peer."""

    public_key: str
    endpoint: Optional[Endpoint] = None
    last_handshake: float = 0.0  # unix time, 0 = never
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass(frozen=True)
class InterfaceSettings:
    name: str
    address: IPv4Interface  # wgIp with the mesh prefix
    listen_port: int
    private_key: str = field(repr=False)  # base64; never logged


__all__ = [
    "PathKind",
    "Endpoint",
    "PeerSpec",
    "DesiredState",
    "PeerStats",
    "InterfaceSettings",
    "IPv4Address",
]
