"""The key schedule of one node's control channel: which shared keys it speaks and accepts,
its mac1 keys, the per-peer state (pair keys, epoch, replay window) and the cipher states.

wire.py's `Codec` is built on it and adds the datagrams; its rules (wire.py's docstring)
say what the keys are bound to. The pieces and the limits are in frame.py.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .frame import (
    MAX_AEADS,
    MAX_PEERS,
    MAX_TOMBSTONES,
    WINDOW,
    Drop,
    Identity,
    PairState,
    blake,
    hasher,
    key_id,
    keyreq_mac,
)


class KeySchedule:
    """The keys and the per-peer state of one node: what `Codec` seals and opens with."""

    def __init__(self, shared_key: bytes, identity: Identity, previous: Optional[bytes] = None) -> None:
        self.identity = identity
        self._mac_to: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()
        self._peers: OrderedDict[bytes, PairState] = OrderedDict()
        self._tombstones: OrderedDict[bytes, tuple[int, int]] = OrderedDict()
        # Cipher states by (peer, we send?, shared key, the receiver's epoch), the most recently
        # used kept: an OpenSSL context each (2.3 KB), made again in microseconds when needed.
        self._aeads: OrderedDict[tuple[bytes, bool, bytes, int], ChaCha20Poly1305] = OrderedDict()
        self.set_keys(shared_key, previous)

    def set_keys(self, shared_key: bytes, previous: Optional[bytes] = None) -> None:
        """The shared key to speak and, during a rotation, the previous one to accept too."""
        keys = [shared_key] + ([previous] if previous is not None and previous != shared_key else [])
        if any(len(k) != 32 for k in keys):
            raise ValueError("shared key must be 32 bytes")
        self._keys = keys
        self._shared = shared_key
        # Per key, keyed BLAKE2s states for our mac1 and for KEYREQs' (copied per datagram,
        # which spares the key block): one hash per key and junk datagram.
        self._mac_own = [(k, hasher(self.mac1_key(self.identity.public, k))) for k in keys]
        self._mac_keyreq = [(k, hasher(keyreq_mac(k))) for k in keys]
        self._mac_to.clear()
        for peer in self._peers.values():  # start over: the newest key both have will win
            peer.speak, peer.tries = None, 0
            peer.pairs = {k: v for k, v in peer.pairs.items() if k in keys}
        self._aeads.clear()

    @property
    def rotating(self) -> bool:
        return len(self._keys) > 1

    def key_ids(self) -> tuple[str, Optional[str]]:
        """`frame.key_id` of the shared key we speak and of the previous one (None)."""
        return key_id(self._keys[0]), key_id(self._keys[1]) if self.rotating else None

    def on_previous(self) -> list[bytes]:
        """The peers that still speak the previous shared key to us (a rotation's phase 2
        would cut them off)."""
        return [k for k, p in self._peers.items() if p.speak is not None and p.speak != self._shared]

    def mac1_key(self, receiver: bytes, shared: Optional[bytes] = None) -> bytes:
        return blake(b"wg_netmanager mac1" + receiver, shared or self._shared)

    def knows(self, key: bytes) -> bool:
        return key in self._peers

    def _peer(self, key: bytes) -> PairState:
        peer = self._peers.get(key)
        if peer is not None:
            self._peers.move_to_end(key)
            return peer
        try:
            dh = self.identity.exchange(key)
        except ValueError:
            raise Drop("forged") from None
        peer = self._peers[key] = PairState(dh)
        stone = self._tombstones.pop(key, None)
        if stone is not None:  # forgotten under load: refuse what it had already sent
            peer.epoch, peer.window_top, peer.window_bits = stone[0], stone[1], (1 << WINDOW) - 1
        if len(self._peers) > MAX_PEERS:
            old_key, old = self._peers.popitem(last=False)
            if old.epoch:
                self._tombstones[old_key] = (old.epoch, old.window_top)
                if len(self._tombstones) > MAX_TOMBSTONES:
                    self._tombstones.popitem(last=False)
        return peer

    def _aead(
        self, peer: PairState, shared: bytes, sender: bytes, receiver: bytes, s_epoch: int, r_epoch: int
    ) -> ChaCha20Poly1305:
        low, high = sorted((sender, receiver))
        info = (
            b"wg_netmanager dir v2"
            + sender
            + receiver
            + s_epoch.to_bytes(8, "big")
            + r_epoch.to_bytes(8, "big")
        )
        pair = peer.pair(shared, low, high)
        return ChaCha20Poly1305(HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(pair))

    def _keep(self, slot: tuple[bytes, bool, bytes, int], aead: ChaCha20Poly1305) -> None:
        self._aeads[slot] = aead
        self._aeads.move_to_end(slot)
        if len(self._aeads) > MAX_AEADS:
            self._aeads.popitem(last=False)

    def _mac_for(self, receiver: bytes, shared: bytes) -> bytes:
        key = self._mac_to.get((receiver, shared))
        if key is None:
            key = self._mac_to[(receiver, shared)] = self.mac1_key(receiver, shared)
            if len(self._mac_to) > MAX_PEERS:
                self._mac_to.popitem(last=False)
        return key

    def _speak(self, peer: PairState) -> bytes:
        """The shared key to seal with for this peer: the newest it has used, else in turn."""
        if peer.speak is not None:
            return peer.speak
        peer.tries += 1
        return self._keys[(peer.tries - 1) % len(self._keys)]
