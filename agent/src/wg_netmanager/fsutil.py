"""Small file-system helpers shared by the key store, the certificate files and net.yaml's key files."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from .core.checks import ConfigError


def read_small_text(
    path: Path,
    limit: int,
    too_large: str,
    not_text: str,
    check_mode: Optional[Callable[[int], None]] = None,
    named_by: str = "",
) -> tuple[str, int]:
    """A small regular file's ASCII text and mode, or one ConfigError ("FILE: (file): REASON"):
    missing or unreadable (`named_by` says who named it), not a regular file, over `limit`
    bytes (`too_large`), not ASCII (`not_text`). `check_mode` may refuse the mode before a
    byte is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        note = f" ({named_by})" if named_by else ""
        raise ConfigError(str(path), "(file)", f"cannot read: {exc.strerror}{note}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ConfigError(str(path), "(file)", "not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    with os.fdopen(fd, "rb") as fh:
        if check_mode is not None:
            check_mode(mode)
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise ConfigError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise ConfigError(str(path), "(file)", f"larger than {limit} bytes: {too_large}")
    try:
        return data.decode("ascii"), mode
    except UnicodeDecodeError:
        raise ConfigError(str(path), "(file)", not_text) from None


def fsync_dir(directory: Path) -> None:
    """Make a new name in `directory` durable (after a link or rename into it)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
