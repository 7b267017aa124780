"""Adopt an interface someone else created (`-e`): configure peers and routes, nothing more.

Never creates or deletes the interface and never changes its private key or listen port; those
are read back, because the agent announces the interface's real public key and port, and its
control channel is keyed from that private key.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.model import InterfaceSettings
from . import netlink
from .base import BackendError
from .kernel import NetlinkControl
from .keys import is_zero, public_key
from .managed import ManagedBackend
from .uapi import SOCKET_DIR, UapiClient, socket_path

log = logging.getLogger(__name__)


class ExistingBackend(ManagedBackend):
    name = "existing"

    def __init__(self, ifname: str, state_dir: Path, socket_dir: Path = SOCKET_DIR) -> None:
        super().__init__(ifname)
        self.state_dir = state_dir
        self._private = ""
        self.uapi = UapiClient(socket_path(ifname, socket_dir))
        self.control = self.uapi

    def up(self, settings: InterfaceSettings) -> None:
        if not netlink.link_exists(self.ifname):
            raise BackendError(f"interface {self.ifname} does not exist (-e adopts an existing interface)")
        # A userspace implementation has a UAPI socket; otherwise it is a kernel interface.
        self.control = self.uapi if self.uapi.exists() else NetlinkControl(self.ifname)
        state = self.control.get()
        if is_zero(state.private_key):
            raise BackendError(f"interface {self.ifname} has no private key: configure one first")
        self.public_key = public_key(state.private_key)
        self._private = state.private_key  # the control channel's keys derive from it
        self.listen_port = state.listen_port
        log.info("adopted existing %s (listen port %d)", self.ifname, self.listen_port)
        # Add our address if it is missing, but keep whatever else the owner configured.
        self._address_and_up(settings, exclusive=False)

    def take_private_key(self) -> str:
        """The adopted interface's private key (read over UAPI or netlink, never written
        anywhere), once: the agent's control channel needs it; nothing else keeps it."""
        private, self._private = self._private, ""
        return private

    def down(self) -> None:
        self._remove_routes()
