"""Shared-key rotation on the wire (wire.py rule 5): a node that accepts the current and the
previous key talks with nodes that know only either, answers each in the newest key it used,
and stays replay-proof across keys."""

from __future__ import annotations

import pytest

from wg_netmanager.core.wire import Codec, Drop, Identity

OLD, NEW = bytes(range(32)), bytes(range(1, 33))
A, B = Identity(bytes([1]) * 32), Identity(bytes([2]) * 32)


def reason(receiver: Codec, data: bytes) -> str:
    with pytest.raises(Drop) as exc:
        receiver.open(data)
    return exc.value.reason


def test_a_rotating_node_tries_both_keys_then_keeps_the_one_that_works() -> None:
    rotating, old_only = Codec(NEW, A, 11, previous=OLD), Codec(OLD, B, 22)
    first, second = (rotating.seal(3, b"hi", B.public, 22) for _ in range(2))
    assert reason(old_only, first) == "unauthenticated"  # in the new key: unknown there
    assert old_only.open(second).body == b"hi"  # in the old one
    assert rotating.open(old_only.seal(4, b"ack", A.public, 11)).body == b"ack"
    for _ in range(3):  # proven: from now on always the old key, for this peer
        assert old_only.open(rotating.seal(3, b"x", B.public, 22)).body == b"x"


def test_two_rotating_nodes_speak_the_new_key() -> None:
    a, b = Codec(NEW, A, 11, previous=OLD), Codec(NEW, B, 22, previous=OLD)
    new_only = Codec(NEW, B, 22)
    data = a.seal(3, b"hi", B.public, 22)
    assert new_only.open(data).body == b"hi"  # the current key first
    assert a.open(b.seal(3, b"x", A.public, 11)).body == b"x"
    assert new_only.open(a.seal(3, b"y", B.public, 22)).body == b"y"


def test_a_newer_key_used_by_the_peer_wins() -> None:
    a, b_old = Codec(NEW, A, 11, previous=OLD), Codec(OLD, B, 22)
    a.open(b_old.seal(3, b"old", A.public, 11))
    b_old.set_keys(NEW, OLD)  # b reloads with the new key
    a.open(b_old.seal(3, b"new", A.public, 11))  # and speaks it (its peers start over)
    assert Codec(NEW, B, 22).open(a.seal(3, b"z", B.public, 22)).body == b"z"


def test_a_keyreq_is_answered_in_the_key_it_came_in() -> None:
    static, asker = Codec(NEW, A, 11, previous=OLD), Codec(OLD, B, 22)
    opened = static.open(asker.keyreq(5))
    assert opened.sender == B.public
    assert asker.open(static.seal(8, b"resp", B.public, 22)).body == b"resp"
    rotating = Codec(NEW, B, 33, previous=OLD)
    assert [reason(Codec(OLD, A, 11), rotating.keyreq(1, attempt=0))] == ["unauthenticated"]
    assert Codec(OLD, A, 11).open(rotating.keyreq(1, attempt=1)).sender == B.public


def test_replays_are_refused_whatever_key_opened_them() -> None:
    a, b = Codec(NEW, A, 11, previous=OLD), Codec(OLD, B, 22)
    data = b.seal(3, b"once", A.public, 11)
    assert a.open(data).body == b"once"
    assert reason(a, data) == "replayed"


def test_after_the_rotation_the_old_key_is_junk() -> None:
    a, b = Codec(NEW, A, 11, previous=OLD), Codec(OLD, B, 22)
    a.open(b.seal(3, b"x", A.public, 11))
    a.set_keys(NEW)
    assert reason(a, b.seal(3, b"y", A.public, 11)) == "unauthenticated"
    assert reason(a, b.keyreq(1)) == "unauthenticated"
    assert not a.rotating


def test_the_same_key_twice_is_one_key() -> None:
    assert not Codec(NEW, A, 11, previous=NEW).rotating
    with pytest.raises(ValueError):
        Codec(NEW, A, 11, previous=b"short")
