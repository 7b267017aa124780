"""The interface every WireGuard backend implements, and what backends read back.

A backend owns one WireGuard interface and the routes through it. The IO shell calls it from
one worker thread, one call at a time (methods block: they talk to netlink or a local control
socket). Nothing here imports pyroute2, so the CLI can import `BackendError` cheaply.
"""

from __future__ import annotations

import abc
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network, IPv6Network
from typing import Optional, Union

from ..core.model import DesiredState, Endpoint, InterfaceSettings, PeerStats

# An adopted interface may carry IPv6 AllowedIPs.
IPNetwork = Union[IPv4Network, IPv6Network]  # a runtime alias: Union for Python 3.9


# Through an exit node (exitroute.py): the fwmark of the tunnel's own packets and of the
# agent's control socket, "WN"; also the number of the routing table it uses.
EXIT_MARK = 0x574E


class BackendError(Exception):
    """A backend could not do what was asked (message is user-facing)."""


@dataclass(frozen=True)
class PeerState:
    """One peer as WireGuard reports it: configuration plus counters."""

    public_key: str  # base64
    endpoint: Endpoint | None = None
    allowed_ips: frozenset[IPNetwork] = frozenset()
    keepalive: int = 0
    last_handshake: float = 0.0  # unix time, 0 = never
    rx_bytes: int = 0
    tx_bytes: int = 0

    def stats(self) -> PeerStats:
        return PeerStats(
            public_key=self.public_key,
            endpoint=self.endpoint,
            last_handshake=self.last_handshake,
            rx_bytes=self.rx_bytes,
            tx_bytes=self.tx_bytes,
        )


@dataclass(frozen=True)
class DeviceState:
    """A whole WireGuard device as read back (UAPI `get=1` or the kernel's netlink dump)."""

    private_key: str = field(default="", repr=False)  # base64, "" if unset; never logged
    listen_port: int = 0
    peers: dict[str, PeerState] = field(default_factory=dict)  # by base64 public key


class Backend(abc.ABC):
    name: str = "base"
    ifname: str = ""
    # Valid after `up()`: what the interface really uses. For `existing` these are read back
    # from the interface, so they may differ from the settings the agent passed in.
    public_key: str = ""
    listen_port: int = 0

    @abc.abstractmethod
    def up(self, settings: InterfaceSettings) -> None:
        """Create (or adopt, for `existing`) the interface, set key, port, address, link up."""

    @abc.abstractmethod
    def apply(self, desired: DesiredState) -> None:
        """Reconcile peers, AllowedIPs, endpoints, keepalives and routes to `desired`.

        Applies the smallest change, and never lets one address be in two peers' AllowedIPs:
        addresses are removed from their old peer before they are added to the new one.
        """

    @abc.abstractmethod
    def stats(self) -> dict[str, PeerStats]:
        """Current peers by public key (base64)."""

    @abc.abstractmethod
    def down(self) -> None:
        """Remove our routes; remove the interface if this backend created it."""

    def problem(self) -> str | None:
        """Why the interface cannot carry traffic now (it, or the daemon behind it, is gone),
        or None. The shell asks after a call failed; a problem makes it `restore`."""
        return None

    def restore(self, settings: InterfaceSettings) -> None:
        """Bring back an interface that has a `problem`: by default, `up` again."""
        self.up(settings)

    def refresh_endpoints(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Our own addresses changed: make WireGuard forget the source address it sends from."""

    def address_events(self) -> Optional[socket.socket]:
        """A socket that turns readable when the local addresses may have changed (drain it,
        then call `local_addresses`); None: poll them."""
        return None

    @abc.abstractmethod
    def local_addresses(self) -> list[IPv4Interface]:
        """Underlay IPv4 addresses of this host (not loopback, not the WireGuard interface)."""
