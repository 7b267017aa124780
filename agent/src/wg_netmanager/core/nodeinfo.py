"""NodeInfo, what the mesh knows of one node, and its JSON form: every field type- and
range-checked on decoding (a violation is `Drop("malformed")`), a digest that names it, and
the interning of the entries of the tables that repeat it.

messages.py carries it in HELLO, HELLO_ACK and table chunks (and re-exports it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import weakref
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

from . import fields as f
from .checks import MAX_SUBNETS
from .model import Endpoint
from .wire import Drop

MAX_LOCALS = 16
DIGEST_SIZE = 8
MAX_CERT = 160  # bytes of a compact certificate (trust.py: at most 129)
MAX_WISHES = 16  # peers a mobile node asks for direct paths to at once (mobile.py)


@dataclass(frozen=True)
class NodeInfo:
    """What the mesh knows of one node."""

    name: str
    wg_ip: IPv4Address
    public_key: str = field(repr=False)
    wg_port: int
    admin_port: int
    locals: tuple[IPv4Interface, ...] = ()
    static: bool = False
    endpoint: Optional[Endpoint] = None  # static: configured; else as observed by a static node
    # Its current run (wire.py): what others need to seal datagrams for it. A static node
    # takes it from the authenticated header of the node's HELLO, never from the body.
    epoch: int = 0
    # Its certificate from the network CA, compact (trust.py); b"": none.
    cert: bytes = field(default=b"", repr=False)
    # In a static node's table: not its own member, but one of another static node's, which
    # it passes on to its members (static nodes themselves never pass these on again).
    relayed: bool = False
    # LAN subnets it routes into the mesh (a subnet gateway; subnets.py decides who uses them).
    subnets: tuple[IPv4Network, ...] = ()
    exit: bool = False  # it offers its internet access (an exit node; exits.py)
    # A data-limited mobile node (mobile.py): nobody probes it but the peers it names in
    # `wishes`, those it has traffic with now.
    mobile: bool = False
    wishes: tuple[IPv4Address, ...] = ()

    @property
    def claim(self) -> tuple[bytes, str, IPv4Address, str]:
        """What a certificate must vouch for (trust.Trust's key)."""
        return self.cert, self.name, self.wg_ip, self.public_key

    def to_json(self) -> dict[str, Any]:
        return (
            {
                "n": self.name,
                "ip": str(self.wg_ip),
                "k": self.public_key,
                "wp": self.wg_port,
                "ap": self.admin_port,
                "l": [str(a) for a in self.locals],
                "s": self.static,
                "ep": str(self.endpoint) if self.endpoint else None,
            }
            | ({"e": self.epoch} if self.epoch else {})
            | ({"ct": f.b64(self.cert)} if self.cert else {})
            | ({"r": True} if self.relayed else {})
            | ({"sn": [str(n) for n in self.subnets]} if self.subnets else {})
            | ({"x": True} if self.exit else {})
            | ({"mb": True} if self.mobile else {})
            | ({"w": [str(a) for a in self.wishes]} if self.wishes else {})
        )

    @classmethod
    def from_json(cls, d: Any) -> NodeInfo:
        if not isinstance(d, dict):
            raise Drop("malformed")
        locals_ = d.get("l", [])
        if not isinstance(locals_, list) or len(locals_) > MAX_LOCALS:
            raise Drop("malformed")
        ep = d.get("ep")
        wishes = d.get("w", [])
        if not isinstance(wishes, list) or len(wishes) > MAX_WISHES:
            raise Drop("malformed")
        return cls(
            name=f.name(d.get("n")),
            wg_ip=f.ip(d.get("ip")),
            public_key=f.key(d.get("k")),
            wg_port=f.port(d.get("wp")),
            admin_port=f.port(d.get("ap")),
            locals=tuple(f.iface(a) for a in locals_),
            static=f.boolean(d.get("s", False)),
            endpoint=f.endpoint(ep) if ep is not None else None,
            epoch=f.uint64(d.get("e", 0)),
            cert=f.blob(d.get("ct", ""), MAX_CERT),
            relayed=f.boolean(d.get("r", False)),
            subnets=f.networks(d.get("sn", []), MAX_SUBNETS),
            exit=f.boolean(d.get("x", False)),
            mobile=f.boolean(d.get("mb", False)),
            wishes=tuple(f.ip(a) for a in wishes),
        )


@functools.lru_cache(maxsize=4096)
def digest(info: NodeInfo) -> bytes:
    """8 bytes that change with anything in `info`: what a HELLO and its answer name instead of
    repeating a NodeInfo the other side already holds."""
    body = json.dumps(info.to_json(), separators=(",", ":")).encode()
    return hashlib.blake2s(body, digest_size=DIGEST_SIZE).digest()


def table_entries(raw: list[Any]) -> tuple[NodeInfo, ...]:
    """A table's entries; one that does not parse is skipped, not the whole chunk (one odd
    entry, e.g. a node a static node saw over IPv6, must not blind every member)."""
    entries = []
    for e in raw:
        try:
            entries.append(_interned(e))
        except Drop:
            continue
    return tuple(entries)


# Every static node serves the same entries, every push repeats most of them: one NodeInfo
# per distinct entry instead of one per copy (a member holding the tables of four static
# nodes held four copies of the mesh). Keyed by the entry's exact values *and* their types
# (True == 1 in Python, but "s": 1 is malformed); anything unusual is decoded anew. An entry
# lives as long as a table, view or member holds its NodeInfo, and no longer: memory follows
# the mesh, not its history (issue 15's week-long soak: a bounded first-in-first-out table
# grew ~0.25 MB an hour towards its 16,384 entries, every old epoch and endpoint in it).
_INTERN: weakref.WeakValueDictionary[tuple[Any, ...], NodeInfo] = weakref.WeakValueDictionary()


def _interned(e: Any) -> NodeInfo:
    try:
        key = tuple((k, type(v), tuple(v) if type(v) is list else v) for k, v in e.items())
        hash(key)
    except (AttributeError, TypeError):
        return NodeInfo.from_json(e)
    info = _INTERN.get(key)
    if info is None:
        info = _INTERN[key] = NodeInfo.from_json(e)
    return info
