"""Control-channel framing: the datagram layout, its limits, and the small pieces wire.py's
`Codec` is built from (the per-peer state, the replay window, the MACs).

Datagram layout (integers big-endian)::

    magic    4  b"WGNM"
    version  1  WIRE_VERSION
    kind     1  KIND_SEALED or KIND_KEYREQ
    sender  32  the sender's public key
    s_epoch  8  the sender's epoch
    r_epoch  8  the receiver's epoch as the sender knows it (0 in a KEYREQ)
    counter  8  the sender's, strictly increasing
    payload  n  sealed: ChaCha20-Poly1305(key, nonce=counter, aad=header)(type 1 | body)
                KEYREQ: nonce 8 | cookie 16 (zeros: none) | zero padding
    mac1    16  BLAKE2s(everything before, key=mac1 key of the receiver)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"WGNM"
WIRE_VERSION = 2
PREFIX = MAGIC + bytes((WIRE_VERSION,))
KIND_SEALED = 1
KIND_KEYREQ = 2
HEADER = struct.Struct("!4sBB32sQQQ")
TAG_SIZE = 16
MAC_SIZE = 16
MAX_DATAGRAM = 1400  # stays below the path MTU of a typical underlay, inside or outside a tunnel
OVERHEAD = HEADER.size + 1 + TAG_SIZE + MAC_SIZE
MAX_BODY = MAX_DATAGRAM - OVERHEAD
KEYREQ_SIZE = 400  # bytes: no answer to a KEYREQ (a KEYRESP, even with a certificate) is larger
WINDOW = 64
MAX_PEERS = 4096  # peers whose keys and windows are remembered; the oldest forgotten first
MAX_TOMBSTONES = 1 << 16  # forgotten peers' (epoch, highest counter): no replay after eviction
RETIRED = 4  # a sender's previous epochs that stay refused
MAX_ASKED = 1024  # KEYREQ senders whose shared key is kept until we answer
MAX_AEADS = 1024  # cipher states kept (the peers we talk to most: static nodes, probes)
MAX_KEYREQS_SEEN = 1 << 14  # recent KEYREQs remembered, so that a copy is refused
KEYREQ_COOKIE = 16  # bytes after the nonce: the asker's cookie from our last answer

DROP_REASONS = (
    "foreign",  # not our protocol or version
    "truncated",
    "unauthenticated",  # mac1 wrong: no shared key, or meant for another node
    "forged",  # mac1 right but it does not decrypt: not from the key it claims
    "replayed",
    "stale",  # for an earlier run of ours, or from an earlier run of the sender
    "malformed",
    "rejected",  # well-formed and authentic, but refused (a claim, an unknown link...)
    "unproven",  # from an address not proven yet: answered with no more than it sent
    "limited",  # over a rate limit
)


class Drop(Exception):
    """A datagram was rejected; `reason` is one of `DROP_REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Identity:
    """A node's X25519 key pair (its WireGuard keys); repr never shows the private key."""

    __slots__ = ("_private", "public")

    def __init__(self, private: bytes) -> None:
        self._private = X25519PrivateKey.from_private_bytes(private)
        self.public = self._private.public_key().public_bytes_raw()

    def exchange(self, peer: bytes) -> bytes:
        """Static-static DH; ValueError for a key that gives no secret (low order)."""
        return self._private.exchange(X25519PublicKey.from_public_bytes(peer))

    def __repr__(self) -> str:
        return f"Identity(public={self.public.hex()[:16]}..., private=<redacted>)"


@dataclass(frozen=True)
class Opened:
    sender: bytes  # public key, proven (for a KEYREQ: only claimed)
    epoch: int  # the sender's
    msg_type: int  # KEYREQ_TYPE for a KEYREQ
    body: bytes


KEYREQ_TYPE = 0  # Opened.msg_type of a KEYREQ (body: nonce 8, cookie 16); never sealed


@dataclass
class PairState:
    dh: bytes  # the static Diffie-Hellman of the two nodes' keys
    pairs: dict[bytes, bytes] = field(default_factory=dict)  # per shared key: HKDF(shared, dh)
    speak: Optional[bytes] = None  # the newest shared key it has used to us (None: try in turn)
    tries: int = 0  # datagrams sealed for it while `speak` is None
    epoch: int = 0  # its current epoch (0: none yet)
    window_top: int = 0
    window_bits: int = 0
    retired: list[int] = field(default_factory=list)

    def pair(self, shared: bytes, low: bytes, high: bytes) -> bytes:
        key = self.pairs.get(shared)
        if key is None:
            info = b"wg_netmanager pair v2" + low + high
            key = self.pairs[shared] = HKDF(hashes.SHA256(), 32, salt=shared, info=info).derive(self.dh)
        return key


def blake(data: bytes, key: bytes, size: int = 32) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=size).digest()


def keyreq_mac(shared: bytes) -> bytes:
    return blake(b"wg_netmanager mac1 keyreq", shared)


def key_id(shared: bytes) -> str:
    """Names a shared key in status without telling anything of it (a keyed hash of a fixed
    text, 48 bits): a rotation's phase 2 checks that every node runs the controller's new key.
    The collection computes the same (plugins/plugin_utils/rotation.py)."""
    return blake(b"wg_netmanager key id", shared, 6).hex()


def hasher(mac_key: bytes) -> Any:
    return hashlib.blake2s(key=mac_key, digest_size=MAC_SIZE)


def window_accept(peer: PairState, counter: int) -> bool:
    """WireGuard's sliding window: accept each counter once, within WINDOW of the highest."""
    if counter > peer.window_top:
        shift = counter - peer.window_top
        peer.window_bits = ((peer.window_bits << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
        peer.window_top = counter
        return True
    offset = peer.window_top - counter
    if offset >= WINDOW or peer.window_bits >> offset & 1:
        return False
    peer.window_bits |= 1 << offset
    return True
