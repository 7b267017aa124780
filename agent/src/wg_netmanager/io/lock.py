"""One agent per interface: an exclusive lock on `<state_dir>/<interface>.lock`, held for the
agent's life and taken before anything else, so a second agent started for the same interface
(by hand, by a second unit) stops before it touches the first one's interface, sockets or
files. The kernel drops the lock with the process, so a `kill -9` leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Optional

from ..core.checks import ConfigError


class AlreadyRunning(Exception):
    """Another agent holds the lock (message is user-facing)."""


class InstanceLock:
    def __init__(self, state_dir: Path, interface: str) -> None:
        self.path = Path(state_dir) / f"{interface}.lock"
        self.interface = interface
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        """Take the lock; AlreadyRunning if another agent holds it, ConfigError (the file, as
        the key store names its own) if the state directory does not take it (full, read-only,
        not ours)."""
        try:
            self._acquire()
        except OSError as exc:
            raise ConfigError(str(self.path), "(file)", f"cannot write: {exc.strerror or exc}") from None

    def _acquire(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            pid = f"pid {holder}, " if holder.isdigit() else ""
            raise AlreadyRunning(
                f"{self.interface}: another agent is already running for this interface "
                f"({pid}lock {self.path})"
            ) from None
        except OSError:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the file stays: removing it would race with the next agent
            self.fd = None
