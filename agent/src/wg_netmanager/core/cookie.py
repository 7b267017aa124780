"""Return-routability cookies, as WireGuard's cookie reply: proof that a node receives what is
sent to the address it speaks from, before a static node sends it anything larger than it sent.

A cookie is a keyed hash of the node's public key and its address under a secret that rotates
every ROTATE seconds (the current and the previous one are accepted). A static node hands it
out only to the address it is for (in a KEYRESP or a COOKIE answer, each no larger than the
question), so a node that spoofs another address never learns it.
"""

from __future__ import annotations

import hashlib
import hmac
import random

from .model import Endpoint

ROTATE = 120.0  # seconds a cookie secret is the current one
SIZE = 16


class Cookies:
    def __init__(self, rng: random.Random, now: float) -> None:
        self._rng = rng
        self._secrets = [rng.randbytes(32), rng.randbytes(32)]  # current, previous
        self._rotated = now

    def __repr__(self) -> str:
        return "Cookies(<redacted>)"

    def _rotate(self, now: float) -> None:
        if now - self._rotated >= ROTATE:
            fresh = self._rng.randbytes(32)
            self._secrets = [fresh, self._secrets[0]] if now - self._rotated < 2 * ROTATE else [fresh, fresh]
            self._rotated = now

    @staticmethod
    def _mac(secret: bytes, key: bytes, src: Endpoint) -> bytes:
        data = key + src.host.encode() + src.port.to_bytes(2, "big")
        return hashlib.blake2s(data, key=secret, digest_size=SIZE).digest()

    def make(self, key: bytes, src: Endpoint, now: float) -> bytes:
        self._rotate(now)
        return self._mac(self._secrets[0], key, src)

    def valid(self, key: bytes, src: Endpoint, cookie: bytes, now: float) -> bool:
        self._rotate(now)
        return any(hmac.compare_digest(self._mac(s, key, src), cookie) for s in self._secrets)
