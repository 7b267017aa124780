"""Kernel WireGuard through pyroute2: rtnetlink for the link, generic netlink for the device.

This machine's kernel has no WireGuard module, so the tests cover `available()` returning
False and the messages built and parsed (with pyroute2's own message classes), not a live
interface.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from ..core.model import Endpoint, InterfaceSettings
from . import netlink
from .base import BackendError, DeviceState, IPNetwork, PeerState
from .managed import ManagedBackend
from .marker import CreatedMarker
from .reconcile import PeerOp

log = logging.getLogger(__name__)

MODULE_DIR = Path("/sys/module/wireguard")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _wireguard_socket() -> Any:
    from pyroute2 import WireGuard  # type: ignore[import-untyped]

    return WireGuard()


def parse_info(msgs: list[Any]) -> DeviceState:
    """Merge a WG_CMD_GET_DEVICE dump. Large devices span several messages, and one peer's
    AllowedIPs may continue in the next message under the same public key."""
    private_key, listen_port = "", 0
    peers: dict[str, PeerState] = {}
    for msg in msgs:
        if msg.get_attr("WGDEVICE_A_PRIVATE_KEY") is not None:
            private_key = _text(msg.get_attr("WGDEVICE_A_PRIVATE_KEY"))
        listen_port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or listen_port
        for peer in msg.get_attr("WGDEVICE_A_PEERS") or ():
            key = _text(peer.get_attr("WGPEER_A_PUBLIC_KEY"))
            allowed: set[IPNetwork] = {
                ip_network(a["addr"], strict=False) for a in peer.get_attr("WGPEER_A_ALLOWEDIPS") or ()
            }
            if key in peers:
                old = peers[key]
                peers[key] = PeerState(**{**old.__dict__, "allowed_ips": old.allowed_ips | allowed})
                continue
            ep = peer.get_attr("WGPEER_A_ENDPOINT")
            hs = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
            peers[key] = PeerState(
                public_key=key,
                endpoint=Endpoint(ep["addr"], ep["port"]) if ep and ep["port"] else None,
                allowed_ips=frozenset(allowed),
                keepalive=peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0,
                last_handshake=(hs["tv_sec"] + hs["tv_nsec"] / 1e9) if hs and hs["tv_sec"] else 0.0,
                rx_bytes=peer.get_attr("WGPEER_A_RX_BYTES") or 0,
                tx_bytes=peer.get_attr("WGPEER_A_TX_BYTES") or 0,
            )
    return DeviceState(private_key=private_key, listen_port=listen_port, peers=peers)


def peer_request(op: PeerOp) -> dict[str, Any]:
    """The `peer` argument of `pyroute2.WireGuard.set` for one op."""
    if op.remove:
        return {"public_key": op.public_key, "remove": True}
    req: dict[str, Any] = {"public_key": op.public_key}
    if op.endpoint is not None:
        req["endpoint_addr"], req["endpoint_port"] = op.endpoint.host, op.endpoint.port
    if op.keepalive is not None:
        req["persistent_keepalive"] = op.keepalive
    if op.allowed_ips is not None:
        req["replace_allowed_ips"] = True
        req["allowed_ips"] = [str(net) for net in op.allowed_ips]
    return req


class NetlinkControl:
    """`DeviceControl` over the kernel's WireGuard generic netlink family."""

    def __init__(self, ifname: str, factory: Callable[[], Any] = _wireguard_socket) -> None:
        self.ifname = ifname
        self.factory = factory

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        try:
            wg = self.factory()
        except (OSError, NetlinkError) as exc:  # no WireGuard genetlink family
            raise BackendError(f"kernel WireGuard netlink is not available: {exc}") from None
        try:
            return fn(wg)
        except (OSError, NetlinkError) as exc:
            raise BackendError(f"kernel WireGuard {what} on {self.ifname} failed: {exc}") from None
        finally:
            wg.close()

    def get(self) -> DeviceState:
        return parse_info(list(self._call("read", lambda wg: wg.info(self.ifname))))

    def set_device(
        self, private_key: str | None = None, listen_port: int | None = None, fwmark: int | None = None
    ) -> None:
        args = {"private_key": private_key, "listen_port": listen_port}
        if fwmark is not None:
            args["fwmark"] = fwmark
        self._call("set", lambda wg: wg.set(self.ifname, **args))

    def apply_ops(self, ops: list[PeerOp]) -> None:
        def run(wg: Any) -> None:
            for op in ops:  # pyroute2 sends one peer per message; order is kept
                wg.set(self.ifname, peer=peer_request(op))

        self._call("peer update", run)


def available(probe_name: str = "") -> bool:
    """True if this kernel can create WireGuard links (loaded, or loadable on demand)."""
    if MODULE_DIR.exists():
        return True
    name = probe_name or f"wgnmprobe{os.getpid() % 100000}"
    try:
        netlink.create_link(name, "wireguard")
    except BackendError:
        return False
    netlink.delete_link(name)
    return True


class KernelBackend(ManagedBackend):
    name = "kernel"

    def __init__(self, ifname: str, state_dir: Path, control: NetlinkControl | None = None) -> None:
        super().__init__(ifname)
        self.control = control or NetlinkControl(ifname)
        self.marker = CreatedMarker(state_dir, ifname, self.name)

    def up(self, settings: InterfaceSettings) -> None:
        if netlink.link_exists(self.ifname):
            if not self.marker.present():
                raise BackendError(
                    f"interface {self.ifname} already exists and was not created by wg_netmanager: "
                    "delete it, or adopt it with -e/--existing-interface"
                )
            log.info("adopting %s, created by an earlier run", self.ifname)
        else:
            self.marker.write()
            netlink.create_link(self.ifname, "wireguard")
        self._set_key_and_port(settings)
        self._address_and_up(settings)

    def down(self) -> None:
        self._remove_routes()
        if self.marker.present():
            netlink.delete_link(self.ifname)
            self.marker.clear()
