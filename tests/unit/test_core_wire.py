"""Control-channel framing: sealing, opening, and every reason a datagram is dropped."""

from __future__ import annotations

import pytest

from wg_netmanager.core import wire
from wg_netmanager.core.wire import Codec, Drop

KEY = bytes(range(32))
NOW = 1_700_000_000.0


def pair(key_b: bytes = KEY) -> tuple[Codec, Codec]:
    return Codec(KEY, 0x1111), Codec(key_b, 0x2222)


def reason(codec: Codec, data: bytes, now: float = NOW) -> str:
    with pytest.raises(Drop) as exc:
        codec.open(data, now)
    return exc.value.reason


def test_round_trip() -> None:
    a, b = pair()
    data = a.seal(3, b"hello", NOW)
    assert len(data) <= wire.MAX_DATAGRAM
    opened = b.open(data, NOW + 1)
    assert (opened.session, opened.msg_type, opened.sent_at, opened.body) == (0x1111, 3, NOW, b"hello")


def test_counter_increases_per_seal() -> None:
    a, b = pair()
    first, second = a.seal(1, b"x", NOW), a.seal(1, b"x", NOW)
    assert first != second
    assert b.open(second, NOW).body == b.open(first, NOW).body == b"x"


# Every byte after magic and version (those make it "foreign"): session, counter, sealed part.
@pytest.mark.parametrize("index", range(5, wire.HEADER.size + wire.INNER.size + wire.TAG_SIZE + 5))
def test_tampered_byte_is_forged(index: int) -> None:
    a, b = pair()
    data = bytearray(a.seal(1, b"hello", NOW))
    data[index] ^= 0x01
    assert reason(b, bytes(data)) == "forged"


def test_wrong_shared_key_is_forged() -> None:
    a, b = pair(key_b=bytes(32))
    assert reason(b, a.seal(1, b"hello", NOW)) == "forged"


@pytest.mark.parametrize(
    "prefix", [b"XGNM" + bytes([wire.WIRE_VERSION]), wire.MAGIC + bytes([wire.WIRE_VERSION + 1])]
)
def test_wrong_magic_or_version_is_foreign(prefix: bytes) -> None:
    a, b = pair()
    data = a.seal(1, b"hello", NOW)
    assert reason(b, prefix + data[5:]) == "foreign"


@pytest.mark.parametrize("size", [0, 3, 4])
def test_too_short_for_magic_is_foreign(size: int) -> None:
    _, b = pair()
    assert reason(b, wire.MAGIC[:size]) == "foreign"


def test_short_is_truncated() -> None:
    a, b = pair()
    data = a.seal(1, b"", NOW)
    assert len(data) == wire.HEADER.size + wire.INNER.size + wire.TAG_SIZE
    for size in (5, wire.HEADER.size, len(data) - 1):
        assert reason(b, data[:size]) == "truncated"


def test_oversize_datagram_is_malformed() -> None:
    a, b = pair()
    data = a.seal(1, b"x" * wire.MAX_BODY, NOW)
    assert len(data) == wire.MAX_DATAGRAM
    assert b.open(data, NOW).body == b"x" * wire.MAX_BODY
    assert reason(b, data + b"\0") == "malformed"


def test_oversize_body_refused_by_seal() -> None:
    a, _ = pair()
    with pytest.raises(ValueError):
        a.seal(1, b"x" * (wire.MAX_BODY + 1), NOW)


def test_replay_of_same_datagram() -> None:
    a, b = pair()
    data = a.seal(1, b"hello", NOW)
    b.open(data, NOW)
    assert reason(b, data) == "replayed"


def test_out_of_order_within_window_accepted_once() -> None:
    a, b = pair()
    sealed = [a.seal(1, bytes([i]), NOW) for i in range(wire.WINDOW)]
    b.open(sealed[-1], NOW)  # counter 64 first
    for data in reversed(sealed[:-1]):  # 63 .. 1: all inside the window
        b.open(data, NOW)
    for data in sealed:
        assert reason(b, data) == "replayed"


def test_too_old_beyond_window_rejected() -> None:
    a, b = pair()
    old = a.seal(1, b"old", NOW)  # counter 1
    later = [a.seal(1, b"", NOW) for _ in range(wire.WINDOW)]  # counters 2 .. 65
    b.open(later[-1], NOW)  # top = 65: counter 1 is 64 behind, just outside
    assert reason(b, old) == "replayed"
    b.open(later[0], NOW)  # counter 2, 63 behind: still inside
    assert reason(b, later[0]) == "replayed"


def test_big_jump_resets_window() -> None:
    a, b = pair()
    sealed = [a.seal(1, b"", NOW) for _ in range(200)]
    b.open(sealed[0], NOW)
    b.open(sealed[199], NOW)
    assert b.open(sealed[150], NOW).body == b""
    assert reason(b, sealed[100]) == "replayed"


@pytest.mark.parametrize("skew", [wire.MAX_SKEW + 0.5, -(wire.MAX_SKEW + 0.5)])
def test_timestamp_beyond_max_skew_is_stale(skew: float) -> None:
    a, b = pair()
    assert reason(b, a.seal(1, b"hello", NOW + skew)) == "stale"
    assert b.open(a.seal(1, b"hello", NOW + wire.MAX_SKEW), NOW).body == b"hello"


def test_nan_timestamp_is_stale() -> None:
    a, b = pair()
    assert reason(b, a.seal(1, b"hello", float("nan"))) == "stale"


def test_stale_does_not_burn_the_counter_window() -> None:
    a, b = pair()
    assert reason(b, a.seal(1, b"", NOW + 1000)) == "stale"
    assert b.open(a.seal(1, b"", NOW), NOW).body == b""


def test_own_session_reflected_is_replayed() -> None:
    a, _ = pair()
    assert reason(a, a.seal(1, b"hello", NOW)) == "replayed"


def test_fresh_session_with_same_counter_is_accepted() -> None:
    """A restarted agent counts from 1 again, under a new session id (and thus key)."""
    a1, b = pair()
    a2 = Codec(KEY, 0x3333)
    b.open(a1.seal(1, b"one", NOW), NOW)
    assert b.open(a2.seal(1, b"two", NOW), NOW).session == 0x3333


def test_forgotten_sessions_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_SESSIONS", 3)
    b = Codec(KEY, 1)
    for s in range(2, 8):
        b.open(Codec(KEY, s).seal(1, b"", NOW), NOW)
    assert len(b._peers) == 3


def test_repr_redacts_key() -> None:
    a, _ = pair()
    assert KEY.hex() not in repr(a) and "redacted" in repr(a)


def test_shared_key_length_checked() -> None:
    with pytest.raises(ValueError):
        Codec(b"short", 1)
