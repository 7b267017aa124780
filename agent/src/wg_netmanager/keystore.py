"""The node's WireGuard private key on disk: `<state_dir>/<interface>/private.key`.

The key is created once and kept, so a restart keeps the node's identity. The file is made
with mode 0600 from the start (O_EXCL in a 0700 directory, then a hard link to its final
name), so it is never readable by others, not even for an instant, and a crash never leaves a
half-written key under the real name.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from .backends.keys import generate_private_key, public_key
from .core.checks import interface_problem
from .core.config import ConfigError
from .fsutil import fsync_dir

log = logging.getLogger(__name__)

KEY_FILE = "private.key"


class PrivateKey:
    """A WireGuard private key whose repr and str never show the secret."""

    __slots__ = ("_private", "_public")

    def __init__(self, private_b64: str) -> None:
        self._public = public_key(private_b64)  # also checks it is base64 of 32 bytes
        self._private = private_b64

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(generate_private_key())

    @property
    def public_b64(self) -> str:
        return self._public

    def private_b64(self) -> str:
        """The secret itself: a method, so it is never read by accident (e.g. vars())."""
        return self._private

    def __repr__(self) -> str:
        return f"PrivateKey(public={self._public}, private=<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrivateKey):
            return NotImplemented
        return secrets.compare_digest(self._private, other._private)

    def __hash__(self) -> int:
        return hash(self._public)


def key_path(state_dir: Path, interface: str) -> Path:
    problem = interface_problem(interface)  # the name is a path component here
    if problem:
        raise ValueError(problem)
    return Path(state_dir) / interface / KEY_FILE


def load_or_create_private_key(state_dir: Path, interface: str) -> PrivateKey:
    """The key kept for `interface`, created on first use."""
    path = key_path(state_dir, interface)
    _private_dir(path.parent)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    key = PrivateKey.generate()
    if _write_new(path, key):
        log.info("created a new private key in %s (public key %s)", path, key.public_b64)
        return key
    # Another process created it between our read and our link: use theirs.
    return _read(path)


def _private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            log.warning("%s had mode %04o; setting 0700", directory, mode)
            directory.chmod(0o700)
    except OSError as exc:
        raise ConfigError(str(directory), "(directory)", f"cannot use: {exc.strerror}") from None


def _read(path: Path) -> PrivateKey:
    # O_NOFOLLOW: a symlink planted here must not make us read or chmod another file.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(str(path), "(file)", "not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            log.warning("%s had mode %04o; setting 0600", path, mode)
            os.fchmod(fh.fileno(), 0o600)
        data = fh.read(1024)
    try:
        return PrivateKey(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(
            str(path),
            "(file)",
            "not a WireGuard private key (base64 of 32 bytes); remove it to make a new one",
        ) from None


def _write_new(path: Path, key: PrivateKey) -> bool:
    """Write the key under `path` unless it exists; False if another process won the race."""
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot create: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # whatever the umask was
            fh.write(key.private_b64().encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # unlike rename, never replaces a key that appeared meanwhile
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    except OSError as exc:  # a full disk (ENOSPC), a quota, an I/O error: the user's to fix
        raise ConfigError(str(path), "(file)", f"cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
