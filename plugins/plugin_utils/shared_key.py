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


# --- Rotation: the controller's state beside the key file ---------------------------------
#
# Rule 1: FILE holds the key every node should speak; FILE.previous, while it exists, the key
#         it replaces, which every node still accepts (net.yaml previousSharedKey).
# Rule 2: a rotation starts by copying FILE to FILE.previous (byte for byte, so a vault
#         encryption is kept) and only then replacing FILE with a new key. A start cut short
#         between the two writes leaves FILE.previous equal to FILE: that is "no rotation"
#         for rendering (rule 3) and the next start finishes it.
# Rule 3: a previous key equal to the current one is no previous key (the agent refuses it).
# Rule 4: a rotation ends by removing FILE.previous.

PREVIOUS_SUFFIX = ".previous"


def previous_path(path: str) -> str:
    """Where a rotation keeps the key it replaces: beside `path`, same name + .previous."""
    return path + PREVIOUS_SUFFIX


def replace(path: str, data: bytes) -> None:
    """Write `data` to `path` (mode 0600) so that a reader sees the old content or the new,
    never a part: a private temporary file in the same directory, synced, renamed over."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".shared_key.", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def effective_previous(current: str, previous: str | None) -> str:
    """The previous key net.yaml carries: '' without a rotation (rule 3)."""
    return previous if previous and previous != current else ""


def rotation_steps(current: str, previous: str | None, finish: bool) -> list[str]:
    """What to do on the controller, in order, to reach the wanted state:
    `keep-previous` (copy FILE to FILE.previous), `new-key` (replace FILE),
    `drop-previous` (remove FILE.previous). Empty: nothing to do."""
    if finish:
        return [] if previous is None else ["drop-previous"]
    if previous is None:
        return ["keep-previous", "new-key"]
    if previous == current:  # a start cut short (rule 2)
        return ["new-key"]
    return []
