# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""The network's shared key on the controller: check, generate, store (no Ansible here).

The key never appears in an exception message: errors name the file, not the content.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import tempfile

KEY_BYTES = 32


class SharedKeyError(ValueError):
    """The key file is unusable; the message names the file and the reason."""


def generate() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def check(text: str, path: str) -> str:
    """Return the key from file content `text`, or raise SharedKeyError naming `path`."""
    key = text.strip()
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SharedKeyError(
            f"shared key file {path}: content is not base64 (expected base64 of"
            f" {KEY_BYTES} random bytes, as 'wg_netmanager genkey' prints)"
        ) from None
    if len(raw) != KEY_BYTES:
        raise SharedKeyError(
            f"shared key file {path}: key is {len(raw)} bytes, expected {KEY_BYTES}"
            " (as 'wg_netmanager genkey' prints)"
        )
    return key


def create(path: str, key: str) -> bool:
    """Store `key` at `path` (0600, new directories 0700) unless the file exists.

    Return True if this call created the file. Lookups run in several forks at once, so the
    file appears atomically: the key is written to a private temporary file in the same
    directory and hard-linked into place, which fails if another fork was first.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # makedirs' mode is reduced by the umask
    fd, tmp = tempfile.mkstemp(prefix=".shared_key.", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)
