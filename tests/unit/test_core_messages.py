"""Control messages: every type round-trips; every malformed field is a `Drop("malformed")`."""

from __future__ import annotations

import base64
import gc
import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

import pytest

from wg_netmanager.core import messages as m
from wg_netmanager.core import nodeinfo, wire
from wg_netmanager.core.checks import MAX_SUBNETS
from wg_netmanager.core.model import Endpoint
from wg_netmanager.core.wire import Codec, Drop, Identity

NOW = 1_700_000_000.0


def key(n: int) -> str:
    return base64.b64encode(n.to_bytes(32, "big")).decode()


def info(n: int = 1, **kw: Any) -> m.NodeInfo:
    fields: dict[str, Any] = {
        "name": f"node{n}",
        "wg_ip": IPv4Address(f"10.1.{n // 250}.{n % 250 + 1}"),
        "public_key": key(n),
        "wg_port": 50000,
        "admin_port": 50001,
        "locals": (IPv4Interface("192.168.1.3/24"), IPv4Interface("172.16.0.9/12")),
        "static": False,
        "endpoint": Endpoint("203.0.113.10", 20001),
    }
    fields.update(kw)
    return m.NodeInfo(**fields)


MESSAGES: list[m.Message] = [
    m.Hello(info(), 0),
    m.Hello(info(2, locals=(), endpoint=None), 7),
    m.HelloAck(info(3, static=True), 2**63 - 1),
    m.Hello(info(4, subnets=(IPv4Network("192.168.50.0/24"), IPv4Network("172.16.0.0/12"))), 0),
    m.TableChunk(5, 0, 2, (info(1), info(2, endpoint=None))),
    m.TableChunk(5, 1, 2, ()),
    m.TableChunk(9, 0, 1, (info(1),), base=7, removed=(key(4), key(5))),
    m.TableChunk(9, 1, 3, (), base=8),
    m.Probe("alice", key(9), 123456789),
    m.Probe("alice", key(9), 0, ack=True),
    m.Leave("bob.example-1", key(10)),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda msg: type(msg).__name__)
def test_round_trip(msg: m.Message) -> None:
    t, body = m.encode(msg)
    assert len(body) <= wire.MAX_BODY
    assert m.decode(t, body) == msg


def test_probe_and_ack_have_distinct_types() -> None:
    assert m.encode(m.Probe("a", key(1), 1))[0] == m.MsgType.PROBE
    assert m.encode(m.Probe("a", key(1), 1, ack=True))[0] == m.MsgType.PROBE_ACK


def malformed(t: int, body: bytes) -> None:
    with pytest.raises(Drop) as exc:
        m.decode(t, body)
    assert exc.value.reason == "malformed"


def hello_with(path: str, value: Any) -> bytes:
    """A valid HELLO body with one field of its node replaced (or deleted for `...`)."""
    d = {"node": info().to_json(), "tv": 0}
    target = d["node"] if path != "tv" else d
    if value is ...:
        del target[path]
    else:
        target[path] = value
    return json.dumps(d).encode()


BAD_NODE_FIELDS = [
    ("n", ...),
    ("n", 5),
    ("n", ""),
    ("n", "-leading-dash"),
    ("n", "has space"),
    ("n", "x" * 64),
    ("n", "ünïcode"),
    ("n", None),
    ("ip", ...),
    ("ip", "10.1.1"),
    ("ip", "10.1.1.256"),
    ("ip", "fe80::1"),
    ("ip", None),
    ("ip", [10, 1, 1, 1]),
    ("ip", -1),
    ("k", ...),
    ("k", 1),
    ("k", key(1)[:-1]),
    ("k", key(1) + "A"),
    ("k", "!" * 44),
    ("k", base64.b64encode(bytes(31)).decode()),
    ("k", base64.b64encode(bytes(33)).decode()),
    ("wp", ...),
    ("wp", 0),
    ("wp", 65536),
    ("wp", -1),
    ("wp", True),
    ("wp", "50000"),
    ("wp", 50000.0),
    ("ap", 0),
    ("ap", 65536),
    ("ap", False),
    ("l", "192.168.1.3/24"),
    ("l", [5]),
    ("l", ["192.168.1.3/33"]),
    ("l", ["not an address"]),
    ("l", ["192.168.1.3/24"] * (m.MAX_LOCALS + 1)),
    ("s", 1),
    ("s", "true"),
    ("s", None),
    ("ep", 5),
    ("ep", "203.0.113.10"),
    ("ep", "203.0.113.10:0"),
    ("ep", "203.0.113.10:65536"),
    ("ep", "203.0.113.10:port"),
    ("ep", "example.com:50000"),
    ("ep", "[::1]:50000"),
    ("e", -1),
    ("e", 2**64),
    ("e", "1"),
    ("e", True),
    ("sn", "192.168.50.0/24"),
    ("sn", ["192.168.50.1/24"]),
    ("sn", ["0.0.0.0/0"]),
    ("sn", [24]),
    ("sn", ["192.168.50.0/24", "192.168.50.0/24"]),
    ("sn", [f"10.{i}.0.0/16" for i in range(MAX_SUBNETS + 1)]),
    ("tv", ...),
    ("tv", -1),
    ("tv", 2**63),
    ("tv", True),
    ("tv", "1"),
    ("tv", 1.5),
]


@pytest.mark.parametrize(
    ("path", "value"), BAD_NODE_FIELDS, ids=[f"{p}={v!r}"[:40] for p, v in BAD_NODE_FIELDS]
)
def test_bad_hello_field_is_malformed(path: str, value: Any) -> None:
    malformed(m.MsgType.HELLO, hello_with(path, value))
    malformed(m.MsgType.HELLO_ACK, hello_with(path, value))


def test_max_locals_is_accepted() -> None:
    locals_ = tuple(IPv4Interface(f"192.168.{i}.1/24") for i in range(m.MAX_LOCALS))
    msg = m.Hello(info(locals=locals_), 0)
    assert m.decode(*m.encode(msg)) == msg


def test_no_subnets_are_left_out_of_the_encoding() -> None:
    """A node that routes no subnet says what an agent before subnet gateways said."""
    assert "sn" not in info().to_json()
    assert m.NodeInfo.from_json(info().to_json()).subnets == ()


def test_name_with_trailing_newline_is_malformed() -> None:
    malformed(m.MsgType.HELLO, hello_with("n", "alice\n"))


def test_integer_ip_is_malformed() -> None:
    malformed(m.MsgType.HELLO, hello_with("ip", 167837953))


def test_non_canonical_key_is_malformed() -> None:
    canonical = key(0)
    assert canonical.endswith("A=")
    malformed(m.MsgType.HELLO, hello_with("k", canonical[:-2] + "B="))


@pytest.mark.parametrize(
    "body",
    [
        {"e": [], "i": 0, "c": 0, "v": 1},
        {"e": [], "i": 1, "c": 1, "v": 1},
        {"e": [], "i": -1, "c": 1, "v": 1},
        {"e": [], "i": 0, "c": 10001, "v": 1},
        {"e": [], "i": 0, "c": True, "v": 1},
        {"e": [], "i": 0, "c": 1, "v": -1},
        {"e": [], "i": 0, "c": 1},
        {"e": {}, "i": 0, "c": 1, "v": 1},
        {"i": 0, "c": 1, "v": 1},
    ],
)
def test_bad_table_chunk_is_malformed(body: dict[str, Any]) -> None:
    malformed(m.MsgType.TABLE, json.dumps(body).encode())


def test_full_and_delta_tables_have_distinct_types() -> None:
    assert m.encode(m.TableChunk(2, 0, 1, ()))[0] == m.MsgType.TABLE
    assert m.encode(m.TableChunk(2, 0, 1, (), base=1))[0] == m.MsgType.TABLE_DELTA


@pytest.mark.parametrize(
    "extra",
    [
        {},  # no base
        {"b": 0, "r": []},
        {"b": 3, "r": []},  # base not older than the version
        {"b": 9, "r": []},
        {"b": 1},  # no removals list
        {"b": 1, "r": "x"},
        {"b": 1, "r": ["not-a-key"]},
        {"b": -1, "r": []},
    ],
)
def test_bad_table_delta_is_malformed(extra: dict[str, Any]) -> None:
    malformed(m.MsgType.TABLE_DELTA, json.dumps({"e": [], "i": 0, "c": 1, "v": 3} | extra).encode())


def test_delta_chunks_fit_datagrams_and_carry_every_removal() -> None:
    removed = tuple(key(i) for i in range(100))
    entries = [info(i) for i in range(30)]
    chunks = m.chunk_table(12, entries, base=11, removed=removed)
    assert len(chunks) > 1
    for c in chunks:
        t, body = m.encode(c)
        assert t == m.MsgType.TABLE_DELTA and len(body) <= wire.MAX_BODY
        assert m.decode(t, body) == c
    assert tuple(k for c in chunks for k in c.removed) == removed
    assert [e for c in chunks for e in c.entries] == entries


def test_table_count_limit_is_inclusive() -> None:
    body = {"e": [], "i": 9999, "c": 10000, "v": 1}
    assert m.decode(m.MsgType.TABLE, json.dumps(body).encode()) == m.TableChunk(1, 9999, 10000, ())


def test_bad_table_entries_are_skipped_one_by_one() -> None:
    """One odd entry (say an IPv6 endpoint a static node observed) must not blind every
    member to the whole chunk."""
    entry = info().to_json()
    entry["wp"] = 0
    v6 = info(3).to_json() | {"ep": "[2001:db8::1]:50000"}
    body = {"e": [info(2).to_json(), entry, 5, {"n": "x"}, v6], "i": 0, "c": 1, "v": 1}
    chunk = m.decode(m.MsgType.TABLE, json.dumps(body).encode())
    assert isinstance(chunk, m.TableChunk) and chunk.entries == (info(2),)


@pytest.mark.parametrize(
    ("t", "body"),
    [
        (m.MsgType.PROBE, {"n": "a", "k": key(1)}),
        (m.MsgType.PROBE, {"n": "a", "k": key(1), "x": -5}),
        (m.MsgType.PROBE_ACK, {"n": "a b", "k": key(1), "x": 1}),
        (m.MsgType.PROBE_ACK, {"n": "a", "k": "short", "x": 1}),
        (m.MsgType.LEAVE, {"n": "a"}),
        (m.MsgType.LEAVE, {"k": key(1)}),
        (m.MsgType.LEAVE, {"n": 1, "k": key(1)}),
        (m.MsgType.HELLO, {"tv": 0}),
        (m.MsgType.HELLO, {"node": [], "tv": 0}),
    ],
)
def test_bad_probe_leave_hello_is_malformed(t: int, body: dict[str, Any]) -> None:
    malformed(t, json.dumps(body).encode())


@pytest.mark.parametrize("body", [b"[]", b"1", b"null", b'"x"', b"[{}]", b"true"])
def test_non_dict_json_is_malformed(body: bytes) -> None:
    for t in m.MsgType:
        malformed(t, body)


@pytest.mark.parametrize("body", [b"", b"{", b"{'n': 1}", b"\xff\xfe", b"{}x", b"\x00"])
def test_invalid_json_is_malformed(body: bytes) -> None:
    malformed(m.MsgType.HELLO, body)


@pytest.mark.parametrize("t", [0, 7, 255])
def test_unknown_type_is_malformed(t: int) -> None:
    _, body = m.encode(m.Leave("a", key(1)))
    malformed(t, body)


def test_deeply_nested_json_is_malformed() -> None:
    malformed(m.MsgType.HELLO, b"[" * 1300)


def test_every_field_mutation_of_a_valid_hello_is_checked() -> None:
    """Guard for the table above: each node field appears at least once."""
    assert {p for p, _ in BAD_NODE_FIELDS} >= set(info().to_json()) | {"tv"}


# --- chunk_table -------------------------------------------------------------------------------


def big_table(n: int = 1000) -> list[m.NodeInfo]:
    longest = [IPv4Interface(f"192.168.{i}.{100 + i}/24") for i in range(m.MAX_LOCALS)]
    return [
        info(
            i,
            name=f"a-rather-long-node-name-{i:05d}-{'x' * 30}",
            locals=tuple(longest[: i % (m.MAX_LOCALS + 1)]),
            endpoint=Endpoint("203.0.113.255", 65535) if i % 3 else None,
            static=i % 7 == 0,
        )
        for i in range(n)
    ]


def test_chunk_table_fits_datagrams_and_keeps_order() -> None:
    table = big_table()
    chunks = m.chunk_table(42, table)
    assert len(chunks) > 1
    codec, peer = (
        Codec(bytes(32), Identity(bytes([1]) * 32), 1),
        Codec(bytes(32), Identity(bytes([2]) * 32), 2),
    )
    union: list[m.NodeInfo] = []
    for i, chunk in enumerate(chunks):
        assert (chunk.version, chunk.index, chunk.count) == (42, i, len(chunks))
        assert chunk.entries
        t, body = m.encode(chunk)
        data = codec.seal(t, body, peer.identity.public, peer.epoch)
        assert len(data) <= wire.MAX_DATAGRAM
        opened = peer.open(data)
        decoded = m.decode(opened.msg_type, opened.body)
        assert decoded == chunk
        union += decoded.entries
    assert union == table


def test_chunk_table_of_one_and_none() -> None:
    assert m.chunk_table(1, []) == [m.TableChunk(1, 0, 1, ())]
    one = [info()]
    assert m.chunk_table(3, one) == [m.TableChunk(3, 0, 1, tuple(one))]


def test_node_info_repr_hides_the_key() -> None:
    assert key(1) not in repr(info(1))
    assert key(9) not in repr(m.Probe("a", key(9), 1))


def test_cached_codec_gives_the_same_results_and_never_caches_a_drop() -> None:
    hello = m.Hello(info(), 3)
    t, body = m.encode_fast(hello)
    assert (t, body) == m.encode(hello)
    assert m.decode_fast(t, body) == hello and m.decode_fast(t, body) is m.decode_fast(t, body)
    for _ in range(2):  # a malformed body raises every time
        with pytest.raises(Drop, match="malformed"):
            m.decode_fast(m.MsgType.HELLO, b'{"node": 1, "tv": 0}')
    table = m.TableChunk(2, 0, 1, (info(),))
    assert m.decode_fast(*m.encode_fast(table)) == table


def test_table_entries_are_interned_but_never_confused() -> None:
    entry = info(9).to_json()
    _, body = m.encode(m.TableChunk(3, 0, 1, (info(9),)))
    first = m.decode(m.MsgType.TABLE, body)
    again = m.decode(m.MsgType.TABLE, body)
    assert first.entries[0] is again.entries[0]  # type: ignore[union-attr]
    _, good = m.encode(m.TableChunk(4, 0, 1, (info(9, static=True),)))
    assert m.decode(m.MsgType.TABLE, good).entries[0].static  # type: ignore[union-attr]
    bad = good.replace(b'"s":true', b'"s":1')  # True == 1 to Python, not to the protocol
    assert m.decode(m.MsgType.TABLE, bad).entries == ()  # type: ignore[union-attr]
    assert entry == info(9).to_json()


def test_an_interned_entry_lives_only_as_long_as_someone_holds_it() -> None:
    """A long-running node meets endless epochs and endpoints: the intern table must hold
    what is in use, not the mesh's history (issue 15's soak)."""
    gc.collect()
    before = len(nodeinfo._INTERN)

    def table(i: int) -> bytes:
        return m.encode(m.TableChunk(5, 0, 1, (info(i, name=f"soak{i}"),)))[1]

    chunks = [m.decode(m.MsgType.TABLE, table(i)) for i in range(200)]
    assert len(nodeinfo._INTERN) == before + 200
    held = chunks[7].entries[0]  # type: ignore[union-attr]
    del chunks
    gc.collect()
    assert len(nodeinfo._INTERN) == before + 1
    assert m.decode(m.MsgType.TABLE, table(7)).entries[0] is held  # type: ignore[union-attr]
