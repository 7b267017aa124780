"""Control-channel framing: authenticated encryption, replay protection, size limits.

Datagram layout (all integers big-endian)::

    magic   4  b"WGNM"
    version 1  WIRE_VERSION
    session 8  random per agent start
    counter 8  per session, strictly increasing
    sealed  n  ChaCha20-Poly1305(key_session, nonce=counter, aad=header)(type 1 | time 8 | body)

Each session gets its own key, derived with HKDF from the network's shared key and the session
id, so (key, nonce) pairs never repeat even though every node counts from 1. A receiver keeps,
per session, the highest counter and a 64-bit window (as WireGuard does), and rejects messages
whose timestamp is more than `MAX_SKEW` seconds away from its own clock: a captured packet can
be replayed neither inside the window (counter) nor later (time, and a fresh receiver window).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"WGNM"
WIRE_VERSION = 1
HEADER = struct.Struct("!4sBQQ")
INNER = struct.Struct("!Bd")
TAG_SIZE = 16
MAX_DATAGRAM = 1400  # stays below the path MTU of a typical underlay, inside or outside a tunnel
MAX_BODY = MAX_DATAGRAM - HEADER.size - INNER.size - TAG_SIZE
MAX_SKEW = 120.0  # seconds between two nodes' clocks that we tolerate
WINDOW = 64
MAX_SESSIONS = 4096  # authenticated senders remembered; oldest forgotten first


class Drop(Exception):
    """A datagram was rejected; `reason` is one of the counters in `DROP_REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


DROP_REASONS = ("foreign", "truncated", "forged", "replayed", "stale", "malformed", "rejected")


@dataclass(frozen=True)
class Opened:
    session: int
    msg_type: int
    sent_at: float
    body: bytes


class _Window:
    __slots__ = ("top", "bits")

    def __init__(self) -> None:
        self.top = 0
        self.bits = 0

    def check_and_set(self, counter: int) -> bool:
        if counter > self.top:
            shift = counter - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            self.top = counter
            return True
        offset = self.top - counter
        if offset >= WINDOW or self.bits >> offset & 1:
            return False
        self.bits |= 1 << offset
        return True


class Codec:
    """Seals outgoing and opens incoming control datagrams for one node."""

    def __init__(self, shared_key: bytes, session: int) -> None:
        if len(shared_key) != 32:
            raise ValueError("shared key must be 32 bytes")
        self._shared = shared_key
        self.session = session
        self._counter = 0
        self._own = ChaCha20Poly1305(self._derive(session))
        self._peers: OrderedDict[int, tuple[ChaCha20Poly1305, _Window]] = OrderedDict()

    def __repr__(self) -> str:
        return f"Codec(session={self.session:016x}, key=<redacted>)"

    def _derive(self, session: int) -> bytes:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"wg_netmanager control v1",
            info=session.to_bytes(8, "big"),
        )
        return hkdf.derive(self._shared)

    def seal(self, msg_type: int, body: bytes, now: float) -> bytes:
        if len(body) > MAX_BODY:
            raise ValueError(f"control message body of {len(body)} bytes exceeds {MAX_BODY}")
        self._counter += 1
        header = HEADER.pack(MAGIC, WIRE_VERSION, self.session, self._counter)
        nonce = self._counter.to_bytes(12, "big")
        return header + self._own.encrypt(nonce, INNER.pack(msg_type, now) + body, header)

    def open(self, data: bytes, now: float) -> Opened:
        if len(data) < 5 or data[:4] != MAGIC:
            raise Drop("foreign")
        if data[4] != WIRE_VERSION:
            raise Drop("foreign")
        if len(data) < HEADER.size + INNER.size + TAG_SIZE:
            raise Drop("truncated")
        if len(data) > MAX_DATAGRAM:
            raise Drop("malformed")
        header = data[: HEADER.size]
        _, _, session, counter = HEADER.unpack(header)
        if session == self.session:
            raise Drop("replayed")  # our own packet reflected back to us
        entry = self._peers.get(session)
        aead = entry[0] if entry else ChaCha20Poly1305(self._derive(session))
        try:
            plain = aead.decrypt(counter.to_bytes(12, "big"), data[HEADER.size :], header)
        except InvalidTag:
            raise Drop("forged") from None
        msg_type, sent_at = INNER.unpack_from(plain)
        if not abs(now - sent_at) <= MAX_SKEW:  # also rejects NaN
            raise Drop("stale")
        if entry is None:
            entry = (aead, _Window())
            self._peers[session] = entry
            if len(self._peers) > MAX_SESSIONS:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(session)
        if not entry[1].check_and_set(counter):
            raise Drop("replayed")
        return Opened(session, msg_type, sent_at, plain[INNER.size :])
