"""Checks of the fields of control messages: every value a sender chose is type- and
range-checked, and a violation is a `Drop("malformed")`, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

from .model import Endpoint
from .wire import Drop

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # used with fullmatch


def name(v: Any) -> str:
    if not isinstance(v, str) or not NAME_RE.fullmatch(v):
        raise Drop("malformed")
    return v


def key(v: Any) -> str:
    if not isinstance(v, str) or len(v) != 44 or not key_ok(v):
        raise Drop("malformed")
    return v


# A mesh repeats the same few thousand keys and addresses in every table chunk; parsing them
# with `ipaddress`/base64 dominated decoding. The caches hold immutable values keyed by exact
# strings (other types take the uncached path), so results are identical, and are bounded.
CACHE = 4096


@functools.lru_cache(maxsize=CACHE)
def key_ok(v: str) -> bool:
    try:
        raw = base64.b64decode(v, validate=True)
    except binascii.Error:
        return False
    # Canonical only: otherwise two spellings (unused low bits set) name one key and slip
    # past every "same key" comparison.
    return len(raw) == 32 and base64.b64encode(raw).decode() == v


parse_ip = functools.lru_cache(maxsize=CACHE)(IPv4Address)
parse_iface = functools.lru_cache(maxsize=CACHE)(IPv4Interface)


def ip(v: Any) -> IPv4Address:
    try:
        if type(v) is not str:
            raise Drop("malformed")  # an integer would parse as an address too
        return parse_ip(v)
    except ValueError:
        raise Drop("malformed") from None


def iface(v: Any) -> IPv4Interface:
    if not isinstance(v, str):
        raise Drop("malformed")
    try:
        return parse_iface(v) if type(v) is str else IPv4Interface(v)
    except ValueError:
        raise Drop("malformed") from None


@functools.lru_cache(maxsize=CACHE)
def _network(v: str) -> IPv4Network:
    return IPv4Network(v)  # strict: host bits set is malformed


def networks(v: Any, limit: int) -> tuple[IPv4Network, ...]:
    """A list of at most `limit` distinct networks written without host bits, none /0."""
    if not isinstance(v, list) or len(v) > limit or any(type(x) is not str for x in v):
        raise Drop("malformed")
    try:
        nets = tuple(_network(x) for x in v)
    except ValueError:
        raise Drop("malformed") from None
    if len(set(nets)) != len(nets) or any(n.prefixlen == 0 for n in nets):
        raise Drop("malformed")
    return nets


def port(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 65536:
        raise Drop("malformed")
    return v


def cookie(v: Any) -> bytes:
    return hexbytes(v, (0, 16))


def hexbytes(v: Any, sizes: tuple[int, ...]) -> bytes:
    """Hex of one of these numbers of bytes."""
    if not isinstance(v, str) or len(v) not in tuple(2 * n for n in sizes):
        raise Drop("malformed")
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        raise Drop("malformed") from None
    if 2 * len(raw) != len(v):  # fromhex skips spaces: one spelling per value
        raise Drop("malformed")
    return raw


def uint64(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
        raise Drop("malformed")
    return v


def uint(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
        raise Drop("malformed")
    return v


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Drop("malformed")
    return v


def endpoint(v: Any) -> Endpoint:
    if not isinstance(v, str):
        raise Drop("malformed")
    ep = parse_endpoint(v) if type(v) is str else parse_endpoint.__wrapped__(v)
    if ep is None:
        raise Drop("malformed")
    return ep


@functools.lru_cache(maxsize=CACHE)
def parse_endpoint(v: str) -> Optional[Endpoint]:
    host, _, number = v.rpartition(":")
    try:
        return Endpoint(str(IPv4Address(host)), port(int(number)))
    except (ValueError, Drop):
        return None


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def blob(v: Any, limit: int) -> bytes:
    """Base64 of at most `limit` bytes (canonical: one spelling per value)."""
    if not isinstance(v, str) or len(v) > (limit + 2) // 3 * 4:
        raise Drop("malformed")
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise Drop("malformed") from None
    if base64.b64encode(raw).decode() != v:
        raise Drop("malformed")
    return raw
