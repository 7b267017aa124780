"""What every backend that configures peers does the same way, whatever the control channel.

A `DeviceControl` reads and writes one WireGuard device: the UAPI socket (wireguard-go,
boringtun) or generic netlink (kernel). The backend subclasses only differ in how the
interface comes to exist and goes away.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import replace
from ipaddress import IPv4Interface
from typing import Optional, Protocol

from ..core.checks import interface_problem
from ..core.model import DesiredState, Endpoint, InterfaceSettings, PeerSpec, PeerStats
from . import exitroute, netlink
from .base import Backend, BackendError, DeviceState
from .gateway import Gateway
from .keys import public_key
from .reconcile import PeerOp, plan_peers

log = logging.getLogger(__name__)

ROUTE_RESYNC = 30.0


class DeviceControl(Protocol):
    def get(self) -> DeviceState: ...

    def set_device(
        self, private_key: str | None = None, listen_port: int | None = None, fwmark: int | None = None
    ) -> None: ...

    def apply_ops(self, ops: list[PeerOp]) -> None: ...


class ManagedBackend(Backend):
    control: DeviceControl  # set by the subclass's __init__ (or `up`, for `existing`)

    def __init__(self, ifname: str) -> None:
        problem = interface_problem(ifname)
        if problem is not None:
            raise BackendError(problem)
        self.ifname = ifname
        self.address: IPv4Interface | None = None  # our wgIp, once up() has run
        # PeerSpec.generation of each peer as last applied, by public key (see plan_peers).
        self._generations: dict[str, int] = {}
        self._synced: tuple[object, float] | None = None  # routes + forwarding synced, and when
        # Why the forwarding flag could not be set as wanted (None: it is as wanted), logged
        # once: /proc/sys is read-only in a container that was not given the sysctl.
        self.forwarding_problem: str | None = None
        self.gateway = Gateway(ifname)  # a subnet gateway's LAN side (forwarding, masquerading)
        self.gateway_problem: str | None = None  # why it is not as wanted, logged once
        # Endpoints WireGuard last reported, by public key. The core leaves a direct peer's
        # endpoint to WireGuard (roaming: PeerSpec.endpoint None), so a device that died takes
        # them with it; `restore` writes these back into the new device.
        self._learned: dict[str, Endpoint] = {}
        self._relearn: dict[str, Endpoint] = {}

    def _set_key_and_port(self, settings: InterfaceSettings) -> None:
        """Write key and port only if they differ: rewriting the port rebinds the socket."""
        state = self.control.get()
        key = settings.private_key if state.private_key != settings.private_key else None
        port = settings.listen_port if state.listen_port != settings.listen_port else None
        if key is not None or port is not None:
            self.control.set_device(private_key=key, listen_port=port)
        try:
            self.public_key = public_key(settings.private_key)
        except ValueError as exc:
            raise BackendError(f"private key for {self.ifname}: {exc}") from None
        self.listen_port = settings.listen_port

    def _address_and_up(self, settings: InterfaceSettings, exclusive: bool = True) -> None:
        self.address = settings.address
        self._synced = None  # a (re)created interface has none of our routes
        netlink.set_address(self.ifname, settings.address, exclusive=exclusive)
        netlink.set_link_up(self.ifname)

    def apply(self, desired: DesiredState) -> None:
        current = self.control.get().peers
        specs = desired.peers
        if self._relearn:  # the first apply to a restored device
            specs = tuple(_relearned(spec, self._relearn, current) for spec in specs)
        try:
            # WireGuard reports handshakes in unix time, so this is the wall clock.
            ops, generations = plan_peers(current, specs, self._generations, time.time())
        except ValueError as exc:
            raise BackendError(f"{self.ifname}: {exc}") from None
        if ops:
            log.info("%s: %d peer change(s)", self.ifname, len(ops))
            self.control.apply_ops(ops)
        self._generations = generations
        self._relearn = {}
        self._sync_routes(desired)

    def _sync_routes(self, desired: DesiredState) -> None:
        source = self.address.ip if self.address is not None else None
        # Most changes only move addresses between peers. Dumping the routing table through
        # pyroute2 costs milliseconds of CPU at 50 routes, so the routes are synced when they
        # (or the forwarding flag) change, and at least every ROUTE_RESYNC seconds, which
        # also repairs routes someone else removed.
        wanted = (
            frozenset(desired.routes),
            source,
            desired.forwarding,
            desired.gateway_for,
            desired.masquerade,
            desired.exit_via,
            desired.exit_offer,
        )
        synced = self._synced
        if synced is None or synced[0] != wanted or time.monotonic() - synced[1] > ROUTE_RESYNC:
            self._synced = None  # until both calls succeeded
            netlink.sync_routes(self.ifname, set(desired.routes), source)
            self._set_forwarding(desired.forwarding)
            self._sync_gateway(desired)
            if desired.exit_via:
                self.control.set_device(fwmark=exitroute.MARK)  # before the rules take the rest
            exitroute.sync(self.ifname, desired.exit_via)
            self._synced = (wanted, time.monotonic())

    def _sync_gateway(self, desired: DesiredState) -> None:
        """Like the forwarding flag: a failure is logged once and shown in the status; the
        mesh itself keeps working."""
        try:
            self.gateway.sync(desired.gateway_for, desired.masquerade, desired.exit_offer)
        except BackendError as exc:
            problem = f"subnet gateway: {exc}"
            if problem != self.gateway_problem:
                log.error("%s: %s", self.ifname, problem)
            self.gateway_problem = problem
        else:
            self.gateway_problem = None

    def _set_forwarding(self, on: bool) -> None:
        """A flag that cannot be written must not fail the rest of the configuration (the
        peers and routes are applied; only relaying through this node is lost): it is logged
        once, with what to do, and shown in the status."""
        try:
            netlink.set_forwarding(self.ifname, on)
        except BackendError as exc:
            problem = (
                f"{exc}: nodes that relay through this one cannot reach each other; in a container, "
                f"start it with the sysctl net.ipv4.conf.default.forwarding=1 (podman or docker run "
                f"--sysctl ...)"
                if on
                else f"{exc}: this node may forward packets between its peers"
            )
            if problem != self.forwarding_problem:
                (log.error if on else log.warning)("%s: %s", self.ifname, problem)
            self.forwarding_problem = problem
        else:
            if self.forwarding_problem is not None:
                log.info("%s: forwarding %s", self.ifname, "on" if on else "off")
            self.forwarding_problem = None

    def refresh_endpoints(self) -> None:
        # wireguard-go caches the local source address per endpoint ("sticky sockets") and
        # keeps sending from an address we no longer have; writing the endpoint again drops
        # that cache.
        ops = [PeerOp(k, endpoint=p.endpoint) for k, p in self.control.get().peers.items() if p.endpoint]
        if ops:
            self.control.apply_ops(ops)

    def problem(self) -> str | None:
        if not netlink.link_exists(self.ifname):
            return f"interface {self.ifname} is gone"
        try:
            self.control.get()
        except BackendError as exc:
            return str(exc)
        return None

    def restore(self, settings: InterfaceSettings) -> None:
        self._generations = {}  # a new device has none of our peers
        self._relearn = dict(self._learned)
        self.up(settings)

    def stats(self) -> dict[str, PeerStats]:
        peers = self.control.get().peers
        self._learned = {key: peer.endpoint for key, peer in peers.items() if peer.endpoint is not None}
        return {key: peer.stats() for key, peer in peers.items()}

    def address_events(self) -> Optional[socket.socket]:
        return netlink.address_doorbell()

    def local_addresses(self) -> list[IPv4Interface]:
        return netlink.local_addresses(exclude=self.ifname)

    def _remove_routes(self) -> None:
        self._synced = None
        self.gateway.close()
        try:
            exitroute.sync(self.ifname, False)
        except BackendError as exc:
            log.warning("%s", exc)
        try:
            netlink.sync_routes(self.ifname, set())
        except BackendError as exc:
            log.warning("%s", exc)


def _relearned(spec: PeerSpec, learned: dict[str, Endpoint], current: Mapping[str, object]) -> PeerSpec:
    """`spec`, with the endpoint the old device had learned if the core leaves it to WireGuard
    and the new device does not have this peer yet."""
    endpoint = learned.get(spec.public_key)
    if spec.endpoint is None and endpoint is not None and spec.public_key not in current:
        return replace(spec, endpoint=endpoint)
    return spec
