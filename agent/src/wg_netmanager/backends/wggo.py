"""wireguard-go: a userspace WireGuard daemon configured through its UAPI socket.

`wireguard-go wg0` creates the TUN device and the control socket, forks a daemon and exits.
The daemon exits by itself when its link is deleted, so `down` only deletes the link.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..core.model import InterfaceSettings
from . import netlink
from .base import BackendError
from .managed import ManagedBackend
from .marker import CreatedMarker
from .uapi import SOCKET_DIR, UapiClient, socket_path

log = logging.getLogger(__name__)

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 10.0


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


class WireGuardGoBackend(ManagedBackend):
    name = "wireguard-go"
    control: UapiClient
    binaries: tuple[str, ...] = ("wireguard-go",)

    def __init__(
        self,
        ifname: str,
        state_dir: Path,
        socket_dir: Path = SOCKET_DIR,
        binary: str | None = None,
    ) -> None:
        super().__init__(ifname)
        self.state_dir = state_dir
        self.control = UapiClient(socket_path(ifname, socket_dir))
        self.marker = CreatedMarker(state_dir, ifname, self.name)
        self.log_path = state_dir / f"{ifname}.{self.name}.log"
        self._binary = binary

    @classmethod
    def find_binary(cls) -> str | None:
        for name in cls.binaries:
            found = shutil.which(name, path=os.environ.get("PATH", CLEAN_PATH) + ":" + CLEAN_PATH)
            if found:
                return found
        return None

    def command(self) -> list[str]:
        binary = self._binary or self.find_binary()
        if binary is None:
            raise BackendError(f"{self.name}: none of {', '.join(self.binaries)} found in PATH")
        return [binary, self.ifname]

    def environment(self) -> dict[str, str]:
        # A clean environment: nothing of ours (WG_TUN_FD, WG_PROCESS_FOREGROUND, ...) leaks in.
        # LOG_LEVEL makes the forked daemon keep stderr, i.e. our log file.
        return {"PATH": CLEAN_PATH, "LOG_LEVEL": "error"}

    def up(self, settings: InterfaceSettings) -> None:
        if settings.name != self.ifname:
            raise BackendError(f"backend is for {self.ifname}, settings are for {settings.name}")
        if netlink.link_exists(self.ifname):
            if not self.marker.present():
                raise BackendError(
                    f"interface {self.ifname} already exists and was not created by wg_netmanager: "
                    "delete it, or adopt it with -e/--existing-interface"
                )
            if not self.control.exists():
                raise BackendError(
                    f"interface {self.ifname} exists but its control socket {self.control.path} is "
                    "missing: delete the interface and start again"
                )
            log.info("adopting %s, created by an earlier run", self.ifname)
        else:
            self._start()
        self._set_key_and_port(settings)
        self._address_and_up(settings)

    def restore(self, settings: InterfaceSettings) -> None:
        # A daemon that is there but does not answer (stopped, wedged) is replaced: deleting
        # its link makes it exit, as on `down`.
        if self.marker.present() and netlink.link_exists(self.ifname) and self.problem() is not None:
            log.warning("%s: deleting %s, whose %s does not answer", self.name, self.ifname, self.name)
            self.down()
        super().restore(settings)

    def _start(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._remove_stale_socket()
        cmd = self.command()
        started = time.monotonic()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Record ownership first: if we die while waiting, the next run adopts, not fails.
            self.marker.write()
            proc = subprocess.run(
                cmd,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,  # a Ctrl-C for the agent must not kill the daemon first
                timeout=START_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.marker.clear()
            raise BackendError(f"cannot start {cmd[0]}: {exc}") from None
        finally:
            os.close(fd)
        if proc.returncode != 0:
            self.marker.clear()
            raise BackendError(
                f"{cmd[0]} {self.ifname} exited with status {proc.returncode}: {self._log_tail()}"
            )
        if not wait_for(
            lambda: self.control.exists() and netlink.link_exists(self.ifname),
            START_TIMEOUT,
        ):
            raise BackendError(f"{cmd[0]} did not create {self.ifname} and {self.control.path} in time")
        log.info(
            "started %s for %s in %.0f ms",
            cmd[0],
            self.ifname,
            (time.monotonic() - started) * 1e3,
        )

    def _remove_stale_socket(self) -> None:
        """A daemon that died (kill -9) leaves its control socket behind; until the new one
        replaces it, our wait in `_start` would find the old one and talk to nobody."""
        if not self.control.exists():
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(self.control.path))
        except OSError:
            log.info("removing stale control socket %s", self.control.path)
            self.control.path.unlink(missing_ok=True)
        else:
            raise BackendError(f"{self.control.path}: another {self.name} answers for {self.ifname}")
        finally:
            probe.close()

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        return " / ".join(lines[-3:]) + f" (log: {self.log_path})"

    def down(self) -> None:
        self._remove_routes()
        if not self.marker.present():
            return
        netlink.delete_link(self.ifname)
        # The daemon notices its link is gone and removes the socket; wait so that an
        # immediate restart does not find a half-dead daemon.
        if not wait_for(lambda: not self.control.exists(), 5.0):
            log.warning("%s did not go away after deleting %s", self.name, self.ifname)
        self.marker.clear()
