"""WireGuard key math: X25519 private keys, public keys, and the two text encodings.

WireGuard configuration files and `wg` use base64; the cross-platform UAPI uses hex. The key
*file* (permissions, location) is the keystore's business, not this module's.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

KEY_LEN = 32


def _raw(key_b64: str) -> bytes:
    try:
        raw = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a base64 WireGuard key") from None
    if len(raw) != KEY_LEN:
        raise ValueError("a WireGuard key is 32 bytes")
    return raw


def generate_private_key() -> str:
    """A new private key, base64 (clamping is done by X25519 itself, like `wg genkey`)."""
    raw = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def public_key(private_b64: str) -> str:
    """The base64 public key of a base64 private key (what `wg pubkey` prints)."""
    priv = X25519PrivateKey.from_private_bytes(_raw(private_b64))
    return base64.b64encode(priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def b64_to_hex(key_b64: str) -> str:
    return _raw(key_b64).hex()


def hex_to_b64(key_hex: str) -> str:
    try:
        raw = bytes.fromhex(key_hex)
    except ValueError:
        raise ValueError("not a hex WireGuard key") from None
    if len(raw) != KEY_LEN:
        raise ValueError("a WireGuard key is 32 bytes")
    return base64.b64encode(raw).decode()


def is_zero(key_b64: str) -> bool:
    """WireGuard reports an unset private key as all zeros (or omits it)."""
    return not key_b64 or _raw(key_b64) == bytes(KEY_LEN)
