"""The interface every WireGuard backend implements.

A backend owns one WireGuard interface and the routes through it. The IO shell calls it from
the asyncio loop (methods may block briefly; they talk to netlink or a local control socket).
"""

from __future__ import annotations

import abc
from ipaddress import IPv4Interface

from ..core.model import DesiredState, InterfaceSettings, PeerStats


class BackendError(Exception):
    """A backend could not do what was asked (message is user-facing)."""


class Backend(abc.ABC):
    name: str = "base"

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

    def local_addresses(self) -> list[IPv4Interface]:
        """Underlay IPv4 addresses of this host (not loopback, not the WireGuard interface)."""
        from .netlink import local_addresses

        return local_addresses(exclude=self.ifname)

    ifname: str = ""
