"""Control-channel framing: per node pair authenticated encryption, replay protection, limits.

Rules:
1. A node's identity is its WireGuard key pair (X25519). Every sealed datagram is encrypted
   and authenticated under a key that needs the network's shared key *and* the static
   Diffie-Hellman of sender and receiver: a member holding only the shared key can speak as
   itself, never as another node, and nobody but the receiver can open it.
2. The key is bound to both nodes' public keys and both nodes' epochs (random per run): a
   datagram opens for one receiver in one run, so it cannot be reflected to another node, and
   nothing captured before a receiver restarted opens after it (no wall clock involved).
3. Per (sender, sender epoch) a receiver keeps the highest counter and a 64-bit window, as
   WireGuard does; only datagrams that decrypt move it. A sender's older epochs stay refused.
4. Before any key derivation, `mac1` (a keyed BLAKE2s with a key precomputed from the shared
   key and the receiver's public key) rejects datagrams of whoever lacks the shared key or
   aimed at another node: one hash per junk datagram.
5. Rotation: besides its current shared key a node may accept the previous one. It answers
   each peer in the newest key that peer has used to it (in that peer's run), and tries its
   keys in turn with a peer that has not answered yet, so nodes that already have the new
   key and nodes that still have only the old one keep talking while a rotation runs.
6. KEYREQ, the only unsealed message, asks a node whose key or epoch we do not know yet for
   both (its mac1 uses the shared key alone). It is padded to KEYREQ_SIZE so the sealed answer
   is never larger than the question.

The datagram layout, the limits and the small pieces are in frame.py; the keys and the
per-peer state `Codec` seals and opens with (rules 1-3 and 5) in keyschedule.py.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Callable
from typing import Optional

from cryptography.exceptions import InvalidTag

from .frame import (
    DROP_REASONS,
    HEADER,
    KEYREQ_COOKIE,
    KEYREQ_SIZE,
    KEYREQ_TYPE,
    KIND_KEYREQ,
    KIND_SEALED,
    MAC_SIZE,
    MAGIC,
    MAX_ASKED,
    MAX_BODY,
    MAX_DATAGRAM,
    MAX_KEYREQS_SEEN,
    OVERHEAD,
    PREFIX,
    RETIRED,
    TAG_SIZE,
    WINDOW,
    WIRE_VERSION,
    Drop,
    Identity,
    Opened,
    blake,
    keyreq_mac,
    window_accept,
)
from .keyschedule import KeySchedule

# What the rest of the agent imports from here (frame.py's names among them).
__all__ = [
    "DROP_REASONS",
    "HEADER",
    "KEYREQ_SIZE",
    "KEYREQ_TYPE",
    "KIND_KEYREQ",
    "KIND_SEALED",
    "MAGIC",
    "MAX_BODY",
    "MAX_DATAGRAM",
    "OVERHEAD",
    "TAG_SIZE",
    "WINDOW",
    "WIRE_VERSION",
    "Codec",
    "Drop",
    "Identity",
    "Opened",
    "blake",
]


class Codec(KeySchedule):
    """Seals outgoing and opens incoming control datagrams for one node in one run."""

    def __init__(
        self, shared_key: bytes, identity: Identity, epoch: int, previous: Optional[bytes] = None
    ) -> None:
        if not 0 < epoch < 1 << 64:
            raise ValueError("epoch must be a non-zero 64-bit number")
        self.epoch = epoch
        self._counter = 0
        self._asked: OrderedDict[bytes, bytes] = OrderedDict()  # KEYREQ senders: their key
        self._keyreqs_seen: OrderedDict[bytes, None] = OrderedDict()  # mac1 of recent KEYREQs
        super().__init__(shared_key, identity, previous)

    def __repr__(self) -> str:
        return f"Codec(public={self.identity.public.hex()[:16]}..., epoch={self.epoch:016x}, key=<redacted>)"

    # --- sending ------------------------------------------------------------------------------

    def seal(self, msg_type: int, body: bytes, receiver: bytes, receiver_epoch: int) -> bytes:
        """A datagram that only `receiver` in its run `receiver_epoch` opens."""
        if len(body) > MAX_BODY:
            raise ValueError(f"control message body of {len(body)} bytes exceeds {MAX_BODY}")
        peer = self._peer(receiver)
        shared = self._asked.pop(receiver, None) or self._speak(peer)
        slot = (receiver, True, shared, receiver_epoch)
        aead = self._aeads.get(slot)
        if aead is None:
            aead = self._aead(peer, shared, self.identity.public, receiver, self.epoch, receiver_epoch)
            self._keep(slot, aead)
        else:
            self._aeads.move_to_end(slot)
        self._counter += 1
        header = HEADER.pack(
            MAGIC, WIRE_VERSION, KIND_SEALED, self.identity.public, self.epoch, receiver_epoch, self._counter
        )
        sealed = header + aead.encrypt(self._counter.to_bytes(12, "big"), bytes((msg_type,)) + body, header)
        return sealed + blake(sealed, self._mac_for(receiver, shared), MAC_SIZE)

    def keyreq(self, nonce: int, attempt: int = 0, cookie: bytes = b"") -> bytes:
        """Ask the node at some address for its public key and epoch; while rotating, under
        the current and the previous shared key in turn (`attempt`: how many asked before).
        `cookie`: the one it gave us last (cookie.py), which spares us its limit for all."""
        shared = self._keys[attempt % len(self._keys)]
        self._counter += 1
        header = HEADER.pack(
            MAGIC, WIRE_VERSION, KIND_KEYREQ, self.identity.public, self.epoch, 0, self._counter
        )
        head = nonce.to_bytes(8, "big") + cookie[:KEYREQ_COOKIE].ljust(KEYREQ_COOKIE, b"\0")
        body = head.ljust(KEYREQ_SIZE - HEADER.size - MAC_SIZE, b"\0")
        return header + body + blake(header + body, keyreq_mac(shared), MAC_SIZE)

    # --- receiving ----------------------------------------------------------------------------

    def precheck(self, data: bytes) -> bytes | str:
        """The cheap checks, before anything is decoded or derived: framing, length and mac1.
        The shared key that authenticates `data`, or why it is dropped (a reason, not an
        exception: junk at line rate must cost as little as possible)."""
        n = len(data)
        if n < 6 or data[:5] != PREFIX:
            return "foreign"
        if n > MAX_DATAGRAM:
            return "malformed"
        kind = data[5]
        if kind == KIND_SEALED:
            if n < OVERHEAD:
                return "truncated"
            macs = self._mac_own
        elif kind == KIND_KEYREQ:
            if n != KEYREQ_SIZE:
                return "truncated" if n < KEYREQ_SIZE else "malformed"
            macs = self._mac_keyreq
        else:
            return "foreign"
        body, mac = data[:-MAC_SIZE], data[-MAC_SIZE:]
        for shared, mac_hash in macs:
            h = mac_hash.copy()
            h.update(body)
            if hmac.compare_digest(h.digest(), mac):
                return shared
        return "unauthenticated"

    def open(
        self, data: bytes, admit: Callable[[], bool] | None = None, shared: bytes | None = None
    ) -> Opened:
        """The datagram's sender, epoch, type and body, or Drop. `admit` is asked before the
        key of a sender we hold none for is derived (a Diffie-Hellman: the one expensive
        step): False drops the datagram as `limited`. `shared`: what `precheck` returned."""
        if shared is None:
            checked = self.precheck(data)
            if isinstance(checked, str):
                raise Drop(checked)
            shared = checked
        if data[5] == KIND_KEYREQ:
            return self._open_keyreq(data, shared)
        header = data[: HEADER.size]
        _, _, _, sender, s_epoch, r_epoch, counter = HEADER.unpack(header)
        if r_epoch != self.epoch:
            raise Drop("stale")  # for an earlier run of ours (or a guess)
        if sender == self.identity.public:
            raise Drop("replayed")  # our own datagram reflected back to us
        if admit is not None and sender not in self._peers and not admit():
            raise Drop("limited")
        peer = self._peer(sender)
        if s_epoch in peer.retired or s_epoch == 0:
            raise Drop("stale")
        slot = (sender, False, shared, s_epoch)
        aead = self._aeads.get(slot)
        if aead is None:
            aead = self._aead(peer, shared, sender, self.identity.public, s_epoch, self.epoch)
        try:
            plain = aead.decrypt(counter.to_bytes(12, "big"), data[HEADER.size : -MAC_SIZE], header)
        except InvalidTag:
            raise Drop("forged") from None
        if s_epoch != peer.epoch:  # proven: the sender restarted (or this is its first word)
            if peer.epoch:
                peer.retired = [peer.epoch, *peer.retired][:RETIRED]
            peer.epoch, peer.window_top, peer.window_bits = s_epoch, 0, 0
            peer.speak, peer.tries = None, 0
        self._keep(slot, aead)  # only once it decrypted: a forger cannot fill the cache
        if not window_accept(peer, counter):
            raise Drop("replayed")
        if peer.speak is None or self._keys.index(shared) < self._keys.index(peer.speak):
            peer.speak = shared
        if not plain or plain[0] == KEYREQ_TYPE:
            raise Drop("malformed")  # type 0 names a KEYREQ, which is never sealed
        return Opened(sender, s_epoch, plain[0], plain[1:])

    def _open_keyreq(self, data: bytes, shared: bytes) -> Opened:
        _, _, _, sender, s_epoch, _, _ = HEADER.unpack_from(data)
        if s_epoch == 0:
            raise Drop("malformed")
        # Its sender is only claimed, so no window can be kept for it (a forger could move
        # a node's window past its next real KEYREQ); but each real KEYREQ is new (counter,
        # nonce), so a copy of a recent one is a replay.
        tag = data[-MAC_SIZE:]
        if tag in self._keyreqs_seen:
            raise Drop("replayed")
        self._keyreqs_seen[tag] = None
        if len(self._keyreqs_seen) > MAX_KEYREQS_SEEN:
            self._keyreqs_seen.popitem(last=False)
        self._asked[sender] = shared  # the KEY_RESP goes out in the key it asked in
        if len(self._asked) > MAX_ASKED:
            self._asked.popitem(last=False)
        return Opened(sender, s_epoch, KEYREQ_TYPE, data[HEADER.size : HEADER.size + 8 + KEYREQ_COOKIE])
