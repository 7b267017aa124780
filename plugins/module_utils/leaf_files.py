# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""A leaf's files on the controller: its private key, its wg-quick configuration and the QR
code of that configuration, in one directory (0700) beside the mesh's shared key file.

Every file here holds the leaf's private key, so each one is written 0600, through a
temporary file in the same directory renamed into place (never world-readable, not even for
a moment). Nothing here returns the private key or puts it into an exception: callers get
the public key and whether a file changed. Each step says what it would change without
writing anything when `check` is true.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import stat
import tempfile
from typing import Any

try:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    HAS_CRYPTOGRAPHY = True
except ImportError:  # reported by the modules with missing_required_lib
    HAS_CRYPTOGRAPHY = False

try:
    import segno

    HAS_SEGNO = True
except ImportError:
    HAS_SEGNO = False

DIR_MODE = 0o700
FILE_MODE = 0o600
# The QR's error correction and size in the PNG: medium correction reads well off a screen.
QR_ERROR = "m"
QR_SCALE = 6


class LeafFileError(Exception):
    """A file that is not what it should be; the message names it, never its content."""


def key_path(directory: str, name: str) -> str:
    return os.path.join(directory, name + ".key")


def config_path(directory: str, name: str) -> str:
    return os.path.join(directory, name + ".conf")


def qr_path(directory: str, name: str) -> str:
    return os.path.join(directory, name + ".png")


def new_private_key() -> str:
    """A WireGuard private key as `wg genkey` prints it: 32 random bytes, clamped, base64."""
    raw = bytearray(os.urandom(32))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode("ascii")


def _raw_key(text: str, path: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise LeafFileError(f"{path} is not a WireGuard private key (base64 of 32 bytes)")
    return raw


def public_key(private_key: str, path: str = "the private key") -> str:
    """The public key of a base64 private key, as `wg pubkey` prints it."""
    raw = _raw_key(private_key, path)
    pub = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def wg_quick_config(
    private_key: str,
    address: str,
    peer_public_key: str,
    endpoint: str,
    allowed_ips: list[str],
    dns: list[str] | None = None,
    keepalive: int = 25,
) -> str:
    """The leaf's wg-quick configuration, as the WireGuard apps import it (no comments: some
    importers keep them as part of a value)."""
    lines = ["[Interface]", f"PrivateKey = {private_key.strip()}", f"Address = {address}"]
    if dns:
        lines.append(f"DNS = {', '.join(dns)}")
    lines += [
        "",
        "[Peer]",
        f"PublicKey = {peer_public_key.strip()}",
        f"Endpoint = {endpoint}",
        f"AllowedIPs = {', '.join(allowed_ips)}",
    ]
    if keepalive:
        lines.append(f"PersistentKeepalive = {keepalive}")
    return "\n".join(lines) + "\n"


def _qr(text: str) -> Any:
    # Never a Micro QR (the apps' scanners do not read those); byte mode, UTF-8.
    return segno.make_qr(text, error=QR_ERROR, encoding="utf-8")


def qr_png(text: str) -> bytes:
    """A PNG of the QR code of `text` (the same bytes for the same text)."""
    out = io.BytesIO()
    _qr(text).save(out, kind="png", scale=QR_SCALE, border=4)
    return out.getvalue()


def qr_terminal(text: str, out: Any = None) -> None:
    """Print the QR code of `text` in a terminal (Unicode blocks)."""
    _qr(text).terminal(out=out, compact=True)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def ensure_dir(directory: str, check: bool) -> bool:
    """The directory, mode 0700 (made with its parents when missing). True if it changed."""
    if os.path.isdir(directory):
        if _mode(directory) == DIR_MODE:
            return False
        if not check:
            os.chmod(directory, DIR_MODE)
        return True
    if os.path.exists(directory):
        raise LeafFileError(f"{directory} is not a directory")
    if not check:
        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # makedirs' mode is masked by the umask
    return True


def ensure_file(path: str, content: bytes, check: bool) -> bool:
    """`path` holds `content`, mode 0600. True if it changed (or would, in check mode)."""
    old = _read(path)
    if old == content:
        if _mode(path) == FILE_MODE:
            return False
        if not check:
            os.chmod(path, FILE_MODE)
        return True
    if not check:
        # mkstemp makes the file 0600 from the start.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return True


def ensure_key(directory: str, name: str, check: bool) -> dict[str, Any]:
    """The leaf's private key, made once and kept. Returns changed, path and public_key
    (None in check mode while there is no key yet)."""
    path = key_path(directory, name)
    changed = ensure_dir(directory, check)
    old = _read(path)
    if old is not None:
        text = old.decode("ascii", errors="replace")
        pub = public_key(text, path)
        changed = ensure_file(path, old, check) or changed  # its mode only
        return {"changed": changed, "path": path, "public_key": pub}
    if check:
        return {"changed": True, "path": path, "public_key": None}
    private = new_private_key()
    ensure_file(path, (private + "\n").encode("ascii"), check=False)
    return {"changed": True, "path": path, "public_key": public_key(private)}


def ensure_config(directory: str, name: str, check: bool, **settings: Any) -> dict[str, Any]:
    """The leaf's wg-quick configuration and, with `qr`, its QR code, from its private key
    (which ensure_key made). `settings`: wg_quick_config's arguments but the private key,
    and `qr`. In check mode without a key yet, both files would change."""
    qr = settings.pop("qr", True)
    paths = {"config_file": config_path(directory, name), "qr_file": qr_path(directory, name) if qr else None}
    kpath = key_path(directory, name)
    old = _read(kpath)
    if old is None:
        if check:
            return {"changed": True, "public_key": None, **paths}
        raise LeafFileError(f"{kpath} does not exist: the leaf's key is made first (leaf_key)")
    private = old.decode("ascii", errors="replace").strip()
    pub = public_key(private, kpath)
    text = wg_quick_config(private, **settings)
    changed = ensure_dir(directory, check)
    changed = ensure_file(paths["config_file"], text.encode("utf-8"), check) or changed
    if qr:
        changed = ensure_file(paths["qr_file"], qr_png(text), check) or changed
    return {"changed": changed, "public_key": pub, **paths}
