"""The control channel's framing: who can open what, and every reason a datagram is dropped."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wg_netmanager.core import keyschedule, wire
from wg_netmanager.core.wire import Codec, Drop, Identity

SHARED = bytes(range(32))


def ident(n: int) -> Identity:
    return Identity(bytes([n]) * 32)


A, B, C = ident(1), ident(2), ident(3)


def codec(who: Identity, epoch: int, shared: bytes = SHARED) -> Codec:
    return Codec(shared, who, epoch)


def reason(receiver: Codec, data: bytes) -> str:
    with pytest.raises(Drop) as exc:
        receiver.open(data)
    return exc.value.reason


def test_round_trip_proves_the_sender() -> None:
    a, b = codec(A, 11), codec(B, 22)
    data = a.seal(3, b"hello", B.public, 22)
    assert len(data) == len(b"hello") + wire.OVERHEAD <= wire.MAX_DATAGRAM
    opened = b.open(data)
    assert (opened.sender, opened.epoch, opened.msg_type, opened.body) == (A.public, 11, 3, b"hello")
    assert a.open(b.seal(4, b"", A.public, 11)).sender == B.public


def test_only_the_receiver_opens_it() -> None:
    """No reflection: what A sealed for B is junk to C, even with the same epoch."""
    a, c = codec(A, 11), codec(C, 22)
    assert reason(c, a.seal(3, b"x", B.public, 22)) == "unauthenticated"


def test_a_member_cannot_speak_as_another_node() -> None:
    """Mallory holds the shared key but not A's private key: putting A's key in the header
    gives a datagram that does not decrypt."""
    b, mallory = codec(B, 22), codec(C, 33)
    forged = bytearray(mallory.seal(3, b"I am A", B.public, 22))
    forged[6:38] = A.public
    forged[-16:] = wire.blake(bytes(forged[:-16]), mallory.mac1_key(B.public), 16)  # mac1 is easy
    assert reason(b, bytes(forged)) == "forged"


def test_outsider_without_the_shared_key_is_rejected_by_mac1() -> None:
    outsider, b = codec(A, 11, shared=os.urandom(32)), codec(B, 22)
    assert reason(b, outsider.seal(3, b"x", B.public, 22)) == "unauthenticated"
    assert reason(b, outsider.keyreq(5)) == "unauthenticated"


def test_replay_and_reordering() -> None:
    a, b = codec(A, 11), codec(B, 22)
    first, second = a.seal(1, b"1", B.public, 22), a.seal(1, b"2", B.public, 22)
    assert b.open(second).body == b"2"
    assert b.open(first).body == b"1"  # late, but inside the window
    assert reason(b, first) == "replayed" and reason(b, second) == "replayed"
    old = a.seal(1, b"old", B.public, 22)
    for _ in range(wire.WINDOW + 1):
        b.open(a.seal(1, b"", B.public, 22))
    assert reason(b, old) == "replayed"  # too far behind


def test_restarted_receiver_accepts_nothing_from_before() -> None:
    a, b = codec(A, 11), codec(B, 22)
    captured = a.seal(1, b"hello", B.public, 22)
    assert b.open(captured).body == b"hello"
    assert reason(codec(B, 23), captured) == "stale"  # B's next run: another epoch


def test_restarted_sender_is_accepted_and_its_old_run_refused() -> None:
    a1, a2, b = codec(A, 11), codec(A, 12), codec(B, 22)
    old = a1.seal(1, b"old run", B.public, 22)
    b.open(a1.seal(1, b"x", B.public, 22))
    assert b.open(a2.seal(1, b"new run", B.public, 22)).epoch == 12
    assert reason(b, old) == "stale"


def test_one_datagram_cannot_wedge_a_window() -> None:
    """Only datagrams that decrypt move the window: a huge counter from anyone else fails."""
    a, b, mallory = codec(A, 11), codec(B, 22), codec(C, 33)
    forged = bytearray(mallory.seal(1, b"", B.public, 22))
    forged[6:38] = A.public
    forged[54:62] = (2**64 - 1).to_bytes(8, "big")
    assert reason(b, bytes(forged)) in ("forged", "unauthenticated")
    assert b.open(a.seal(1, b"still fine", B.public, 22)).body == b"still fine"


def test_keyreq_is_as_large_as_any_answer() -> None:
    a, b = codec(A, 11), codec(B, 22)
    req = a.keyreq(0xDEADBEEF)
    assert len(req) == wire.KEYREQ_SIZE
    opened = b.open(req)
    assert (opened.sender, opened.epoch, opened.msg_type) == (A.public, 11, wire.KEYREQ_TYPE)
    assert int.from_bytes(opened.body[:8], "big") == 0xDEADBEEF
    answer = b.seal(8, bytes(wire.KEYREQ_SIZE - wire.OVERHEAD), A.public, 11)  # the largest body that fits
    assert len(answer) == len(req) and a.open(answer).sender == B.public


def test_low_order_public_key_is_refused() -> None:
    b = codec(B, 22)
    bad = bytearray(codec(A, 11).seal(1, b"", B.public, 22))
    bad[6:38] = bytes(32)  # the all-zero point gives no shared secret
    bad[-16:] = wire.blake(bytes(bad[:-16]), b.mac1_key(B.public), 16)
    assert reason(b, bytes(bad)) == "forged"


def test_forgotten_peer_is_not_replayable() -> None:
    a, b = codec(A, 11), codec(B, 22)
    seen = a.seal(1, b"seen", B.public, 22)
    b.open(seen)
    b._peers.clear()  # as if MAX_PEERS newer peers had pushed A out
    b._tombstones[A.public] = (11, 1)
    assert reason(b, seen) == "replayed"
    assert b.open(a.seal(1, b"new", B.public, 22)).body == b"new"


@pytest.mark.parametrize("size", [0, 5, 6, wire.OVERHEAD - 1])
def test_truncated_and_foreign(size: int) -> None:
    data = codec(A, 11).seal(1, b"hello", B.public, 22)[:size]
    assert reason(codec(B, 22), data) in ("foreign", "truncated")


def test_too_large_is_malformed() -> None:
    data = codec(A, 11).seal(1, b"x", B.public, 22)
    assert reason(codec(B, 22), data + bytes(wire.MAX_DATAGRAM)) == "malformed"


def test_every_flipped_byte_is_dropped() -> None:
    a = codec(A, 11)
    data = a.seal(1, b"hello world", B.public, 22)
    for i in range(len(data)):
        b = codec(B, 22)
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(Drop):
            b.open(bytes(bad))


def test_repr_hides_keys() -> None:
    assert "redacted" in repr(A) and "redacted" in repr(codec(A, 1))
    assert (bytes([1]) * 32).hex() not in repr(A) + repr(codec(A, 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=wire.MAX_DATAGRAM + 10), st.integers(0, 3))
def test_junk_never_escapes_as_another_exception(junk: bytes, mode: int) -> None:
    b = codec(B, 22)
    if mode and len(junk) >= 6:  # pass the cheap checks some of the time
        junk = b"WGNM" + bytes((wire.WIRE_VERSION, mode % 2 + 1)) + junk[6:]
    with pytest.raises(Drop):
        b.open(junk)


def test_mutations_of_real_datagrams() -> None:
    rng = random.Random(7)
    a = codec(A, 11)
    for _ in range(300):
        b = codec(B, 22)
        data = bytearray(
            rng.choice([a.seal(rng.randrange(9), os.urandom(rng.randrange(50)), B.public, 22), a.keyreq(9)])
        )
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            b.open(bytes(data))
        except Drop:
            pass


def test_cipher_states_are_bounded_and_made_again_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OpenSSL context per peer and direction (2.3 KB) for every peer ever talked to made a
    simulated N=1000 mesh need 5 GB; only the most recently used are kept."""
    monkeypatch.setattr(keyschedule, "MAX_AEADS", 8)
    hub = codec(A, 11)
    others = [(ident(10 + i), 100 + i) for i in range(20)]
    for who, epoch in others:
        peer = codec(who, epoch)
        assert hub.open(peer.seal(1, b"hi", A.public, 11)).body == b"hi"
        assert peer.open(hub.seal(2, b"ho", who.public, epoch)).body == b"ho"
    assert len(hub._aeads) <= 8
    first, epoch = others[0]
    again = Codec(SHARED, first, epoch)
    again._counter = 10  # a later datagram of the same run, long evicted here
    assert hub.open(again.seal(1, b"back", A.public, 11)).body == b"back"
