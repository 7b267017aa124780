"""Control messages: typed, versioned (by the wire header), JSON-encoded bodies with limits.

Decoding never trusts the sender: every field is type- and range-checked and a violation is a
`Drop("malformed")`, never an exception that escapes to the agent. The NodeInfo they carry,
its JSON form and its digest are in nodeinfo.py (its names are importable from here too).
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass, field
from typing import Optional, Union

from . import fields as f
from .nodeinfo import DIGEST_SIZE, table_entries
from .nodeinfo import MAX_LOCALS as MAX_LOCALS  # what the rest of the agent imports from here
from .nodeinfo import NodeInfo as NodeInfo
from .nodeinfo import digest as digest
from .wire import MAX_BODY, Drop


class MsgType(enum.IntEnum):
    HELLO = 1  # node -> static node, every heartbeat interval: who I am, what I know
    HELLO_ACK = 2  # static node -> node: who I am, my table version
    TABLE = 3  # static node -> node: one chunk of the node table
    PROBE = 4  # node -> node on a candidate address: are you there?
    PROBE_ACK = 5  # answer to PROBE
    LEAVE = 6  # node -> static nodes (static node -> members too): I am shutting down
    TABLE_DELTA = 7  # static node -> node: one chunk of the changes since a version it holds
    KEY_RESP = 8  # answer to a KEYREQ (wire.py): I am this key, in this epoch; your cookie
    COOKIE = 9  # static node -> node whose HELLO came from an unproven address: prove it


@dataclass(frozen=True)
class Hello:
    """Every heartbeat. `node` is left out (None) once the static node's answer has shown that
    it holds exactly what `digest` names; a static node that does not (it forgot us) answers
    with the digest it holds, and the next HELLO is whole again."""

    node: Optional[NodeInfo]
    table_version: int  # the version of the receiver's table the sender holds (0: none)
    cookie: bytes = b""  # the receiver's cookie for our address (cookie.py); b"": none yet
    digest: bytes = b""  # of the sender's NodeInfo (`digest`)


@dataclass(frozen=True)
class HelloAck:
    """The answer. `node` (the static node itself) is left out when the HELLO named the
    current table version: the static node's entry in that table is the same NodeInfo."""

    node: Optional[NodeInfo]
    table_version: int
    digest: bytes = b""  # of the HELLO sender's NodeInfo as we hold it (b"": none)


@dataclass(frozen=True)
class TableChunk:
    """One datagram of a table: the whole table at `version` (base 0) or, as TABLE_DELTA, what
    changed between `base` and `version`: `entries` added or changed, `removed` public keys.
    A delta applies only on top of exactly `base`; a node holding anything else ignores it
    and its next HELLO (which names the version it holds) gets it what it lacks."""

    version: int
    index: int
    count: int
    entries: tuple[NodeInfo, ...]
    base: int = 0
    removed: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Probe:
    name: str
    public_key: str = field(repr=False)
    nonce: int
    ack: bool = False


@dataclass(frozen=True)
class Leave:
    name: str
    public_key: str = field(repr=False)


@dataclass(frozen=True)
class KeyResp:
    """The answer to a KEYREQ, sealed by the answering node (so its key is proven)."""

    nonce: int  # the KEYREQ's
    cookie: bytes  # for the asker's key and address


@dataclass(frozen=True)
class Cookie:
    cookie: bytes


Message = Union[Hello, HelloAck, TableChunk, Probe, Leave, KeyResp, Cookie]


def encode(msg: Message) -> tuple[int, bytes]:
    """Return (message type, body bytes)."""
    if isinstance(msg, Hello):
        t, d = MsgType.HELLO, {"tv": msg.table_version, "c": msg.cookie.hex(), "d": msg.digest.hex()}
        if msg.node is not None:
            d["node"] = msg.node.to_json()
    elif isinstance(msg, HelloAck):
        t, d = MsgType.HELLO_ACK, {"tv": msg.table_version, "d": msg.digest.hex()}
        if msg.node is not None:
            d["node"] = msg.node.to_json()
    elif isinstance(msg, TableChunk):
        t = MsgType.TABLE_DELTA if msg.base else MsgType.TABLE
        d = {"v": msg.version, "i": msg.index, "c": msg.count, "e": [e.to_json() for e in msg.entries]}
        if msg.base:
            d |= {"b": msg.base, "r": list(msg.removed)}
    elif isinstance(msg, Probe):
        t = MsgType.PROBE_ACK if msg.ack else MsgType.PROBE
        d = {"n": msg.name, "k": msg.public_key, "x": msg.nonce}
    elif isinstance(msg, Leave):
        t, d = MsgType.LEAVE, {"n": msg.name, "k": msg.public_key}
    elif isinstance(msg, KeyResp):
        t, d = MsgType.KEY_RESP, {"x": msg.nonce, "c": msg.cookie.hex()}
    elif isinstance(msg, Cookie):
        t, d = MsgType.COOKIE, {"c": msg.cookie.hex()}
    else:  # pragma: no cover - programming error
        raise TypeError(msg)
    return int(t), json.dumps(d, separators=(",", ":")).encode()


def decode(msg_type: int, body: bytes) -> Message:
    try:
        d = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[..." nests past the stack
        raise Drop("malformed") from None
    if not isinstance(d, dict):
        raise Drop("malformed")
    try:
        t = MsgType(msg_type)
    except ValueError:
        raise Drop("malformed") from None
    if t in (MsgType.HELLO, MsgType.HELLO_ACK):
        node = d.get("node")
        info = None if node is None else NodeInfo.from_json(node)
        sum_ = f.hexbytes(d.get("d", ""), (0, DIGEST_SIZE))
        if t == MsgType.HELLO:
            if info is None and not sum_:
                raise Drop("malformed")  # names neither itself nor what the receiver holds
            return Hello(info, f.uint(d.get("tv")), f.cookie(d.get("c", "")), sum_)
        return HelloAck(info, f.uint(d.get("tv")), sum_)
    if t == MsgType.KEY_RESP:
        return KeyResp(f.uint64(d.get("x")), f.cookie(d.get("c")))
    if t == MsgType.COOKIE:
        return Cookie(f.cookie(d.get("c")))
    if t in (MsgType.TABLE, MsgType.TABLE_DELTA):
        entries = d.get("e")
        if not isinstance(entries, list):
            raise Drop("malformed")
        count, index, version = f.uint(d.get("c")), f.uint(d.get("i")), f.uint(d.get("v"))
        if not 0 < count <= 10000 or index >= count:
            raise Drop("malformed")
        base = 0
        removed: tuple[str, ...] = ()
        if t == MsgType.TABLE_DELTA:
            base, gone = f.uint(d.get("b")), d.get("r")
            if not 0 < base < version or not isinstance(gone, list):
                raise Drop("malformed")
            removed = tuple(f.key(k) for k in gone)
        return TableChunk(version, index, count, table_entries(entries), base, removed)
    if t in (MsgType.PROBE, MsgType.PROBE_ACK):
        return Probe(f.name(d.get("n")), f.key(d.get("k")), f.uint(d.get("x")), t == MsgType.PROBE_ACK)
    return Leave(f.name(d.get("n")), f.key(d.get("k")))


def chunk_table(
    version: int, entries: list[NodeInfo], base: int = 0, removed: tuple[str, ...] = ()
) -> list[TableChunk]:
    """Split a table (or, with `base`, a delta) into chunks that each fit one datagram."""
    chunks: list[tuple[list[NodeInfo], list[str]]] = [([], [])]
    envelope = 96 if base else 64  # of a chunk body
    size = envelope
    items: list[Union[NodeInfo, str]] = [*removed, *entries]
    for item in items:
        n = (len(json.dumps(item.to_json(), separators=(",", ":"))) if isinstance(item, NodeInfo) else 46) + 1
        if (chunks[-1][0] or chunks[-1][1]) and size + n > MAX_BODY:
            chunks.append(([], []))
            size = envelope
        if isinstance(item, NodeInfo):
            chunks[-1][0].append(item)
        else:
            chunks[-1][1].append(item)
        size += n
    return [TableChunk(version, i, len(chunks), tuple(e), base, tuple(r)) for i, (e, r) in enumerate(chunks)]


# HELLOs and their answers repeat every second with the same content (a static node gets one
# from every member, a member sends one to every static node): at hundreds of nodes, encoding
# and decoding them was most of an agent's CPU. Both functions are pure and messages are
# immutable, so identical bytes and messages are served from bounded caches. Only these two
# kinds: table chunks are large and seldom repeat.
_REPEATED = (MsgType.HELLO, MsgType.HELLO_ACK)


@functools.lru_cache(maxsize=2048)
def _decode_repeated(msg_type: int, body: bytes) -> Message:
    return decode(msg_type, body)


@functools.lru_cache(maxsize=256)
def _encode_repeated(msg: Message) -> tuple[int, bytes]:
    return encode(msg)


def decode_fast(msg_type: int, body: bytes) -> Message:
    """`decode`, cached for HELLO and HELLO_ACK (a malformed body is not cached: it raises)."""
    return _decode_repeated(msg_type, body) if msg_type in _REPEATED else decode(msg_type, body)


def encode_fast(msg: Message) -> tuple[int, bytes]:
    """`encode`, cached for HELLO and HELLO_ACK."""
    return _encode_repeated(msg) if isinstance(msg, (Hello, HelloAck)) else encode(msg)
