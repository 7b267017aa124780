"""Node certificates of the optional network CA: an Ed25519 signature binding a node's name,
mesh address, WireGuard public key and routed subnets to a validity period.

Binary encoding, version 1 (integers big-endian; 160 to 231 bytes)::

    version     1   CERT_VERSION
    serial      8   random, chosen by the signer; what net.yaml's revocation list names
    not_before  8   unix seconds
    not_after   8   unix seconds, after not_before, at most MAX_TIME
    wg_ip       4   the node's address in the mesh
    public_key 32   the node's WireGuard (X25519) public key
    issuer     32   the CA's Ed25519 public key (the raw bytes of ca.pub)
    name_len    1   1..NAME_MAX
    name        n   ASCII, the configuration's name rules
    n_subnets   1   0..MAX_SUBNETS
    subnets    5k   each: network address 4, prefix length 1 (no host bits, no repeats)
    signature  64   Ed25519(CA, SIGN_CONTEXT || every byte above)

Every accepted encoding re-encodes to the same bytes, so the signature covers exactly what a
receiver sees. Decoding trusts nothing: any defect is a `CertError`, never another exception.
Pure code: the time (`now`) and the serial are arguments.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from . import checks
from .checks import ConfigError

CERT_VERSION = 1
KEY_LEN = 32
SIG_LEN = 64
MAX_SUBNETS = checks.MAX_SUBNETS
MAX_TIME = 253402300799  # 9999-12-31 23:59:59 UTC: the last second datetime can show
SIGN_CONTEXT = b"wg_netmanager certificate\x00"  # a CA signature means nothing else

_FIXED = struct.Struct("!BQQQ4s32s32s")
_SUBNET = struct.Struct("!4sB")
MIN_SIZE = _FIXED.size + 1 + 1 + 1 + SIG_LEN
MAX_SIZE = _FIXED.size + 1 + checks.NAME_MAX + 1 + MAX_SUBNETS * _SUBNET.size + SIG_LEN


class CertError(Exception):
    """A certificate is malformed, not valid, or does not give what a node claims."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CaKey:
    """The CA's Ed25519 private key; its repr and str never show the secret."""

    __slots__ = ("_key", "public")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != KEY_LEN:
            raise CertError(f"a CA private key is {KEY_LEN} bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public: bytes = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_b64(self) -> str:
        return b64(self.public)

    def seed(self) -> bytes:
        """The secret itself, for the key file: a method, so it is never read by accident."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign_bytes(self, data: bytes) -> bytes:
        return self._key.sign(SIGN_CONTEXT + data)

    def __repr__(self) -> str:
        return f"CaKey(public={self.public_b64}, private=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class Cert:
    """A decoded, well-formed certificate (not necessarily a valid one: see `verify`)."""

    serial: int
    name: str
    wg_ip: IPv4Address
    public_key: str  # base64, as NodeInfo.public_key and `wg` show it
    subnets: tuple[IPv4Network, ...]
    not_before: int  # unix seconds
    not_after: int  # unix seconds, inclusive
    issuer: bytes  # the CA's raw Ed25519 public key
    signature: bytes = field(repr=False)
    version: int = CERT_VERSION

    def __post_init__(self) -> None:
        _check_fields(self)


def _check_fields(c: Cert) -> None:
    if type(c.version) is not int or c.version != CERT_VERSION:
        raise CertError(f"unknown certificate version {c.version!r} (this agent reads {CERT_VERSION})")
    if type(c.serial) is not int or not 0 <= c.serial < 2**64:
        raise CertError("serial: must be a 64-bit unsigned integer")
    try:
        checks.name(c.name, "certificate", "name")
    except ConfigError as exc:
        raise CertError(f"name: {exc.reason}") from None
    if not isinstance(c.wg_ip, IPv4Address):
        raise CertError("wg_ip: must be an IPv4 address")
    _key_bytes(c.public_key)
    if not isinstance(c.subnets, tuple) or not all(isinstance(s, IPv4Network) for s in c.subnets):
        raise CertError("subnets: must be a tuple of IPv4 networks")
    if len(c.subnets) > MAX_SUBNETS:
        raise CertError(f"subnets: {len(c.subnets)} listed, at most {MAX_SUBNETS}")
    if len(set(c.subnets)) != len(c.subnets):
        raise CertError("subnets: listed twice")
    for t in (c.not_before, c.not_after):
        if type(t) is not int or not 0 <= t <= MAX_TIME:
            raise CertError(f"validity: times must be whole unix seconds in 0..{MAX_TIME}")
    if c.not_after <= c.not_before:
        raise CertError("validity: not_after must be after not_before")
    if not isinstance(c.issuer, bytes) or len(c.issuer) != KEY_LEN:
        raise CertError(f"issuer: must be {KEY_LEN} bytes")
    if not isinstance(c.signature, bytes) or len(c.signature) != SIG_LEN:
        raise CertError(f"signature: must be {SIG_LEN} bytes")


def _key_bytes(key_b64: Any) -> bytes:
    try:
        raw = base64.b64decode(key_b64, validate=True) if isinstance(key_b64, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_LEN or base64.b64encode(raw).decode() != key_b64:
        raise CertError(f"public_key: must be the base64 of {KEY_LEN} bytes")
    if raw == bytes(KEY_LEN):
        raise CertError("public_key: the all-zero key is not a key")
    return raw


def _tbs(c: Cert) -> bytes:
    """The signed part: everything but the signature."""
    name = c.name.encode("ascii")
    fixed = (c.version, c.serial, c.not_before, c.not_after, c.wg_ip.packed, _key_bytes(c.public_key))
    head = _FIXED.pack(*fixed, c.issuer)
    nets = b"".join(_SUBNET.pack(s.network_address.packed, s.prefixlen) for s in c.subnets)
    return head + bytes([len(name)]) + name + bytes([len(c.subnets)]) + nets


def encode(cert: Cert) -> bytes:
    return _tbs(cert) + cert.signature


def decode(data: bytes) -> Cert:
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise CertError("certificate: must be bytes")
    if data[:1] and data[0] != CERT_VERSION:
        raise CertError(f"unknown certificate version {data[0]} (this agent reads {CERT_VERSION})")
    if len(data) < MIN_SIZE:
        raise CertError(f"truncated: {len(data)} bytes, at least {MIN_SIZE}")
    if len(data) > MAX_SIZE:
        raise CertError(f"too long: {len(data)} bytes, at most {MAX_SIZE}")
    version, serial, not_before, not_after, ip, key, issuer = _FIXED.unpack_from(data)
    pos = _FIXED.size
    name_len = data[pos]
    if not 1 <= name_len <= checks.NAME_MAX:
        raise CertError(f"name: length {name_len} out of range 1..{checks.NAME_MAX}")
    try:
        name = data[pos + 1 : pos + 1 + name_len].decode("ascii")
    except UnicodeDecodeError:
        raise CertError("name: not ASCII") from None
    pos += 1 + name_len  # < MIN_SIZE - 1: the subnet count is there
    count = data[pos]
    pos += 1
    if count > MAX_SUBNETS:
        raise CertError(f"subnets: {count} listed, at most {MAX_SUBNETS}")
    expected = pos + count * _SUBNET.size + SIG_LEN
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "trailing bytes"
        raise CertError(f"{kind}: {len(data)} bytes, expected {expected}")
    subnets = []
    for _ in range(count):
        addr, prefix = _SUBNET.unpack_from(data, pos)
        pos += _SUBNET.size
        if prefix > 32:
            raise CertError(f"subnets: prefix length {prefix} out of range 0..32")
        try:
            subnets.append(IPv4Network((addr, prefix)))
        except ValueError:
            raise CertError(f"subnets: host bits set in {IPv4Address(addr)}/{prefix}") from None
    return Cert(
        serial=serial,
        name=name,
        wg_ip=IPv4Address(ip),
        public_key=base64.b64encode(key).decode(),
        subnets=tuple(subnets),
        not_before=not_before,
        not_after=not_after,
        issuer=issuer,
        signature=data[pos:],
        version=version,
    )


def sign(
    ca: CaKey,
    *,
    serial: int,
    name: str,
    wg_ip: IPv4Address,
    public_key: str,
    subnets: Iterable[IPv4Network] = (),
    not_before: int,
    not_after: int,
) -> Cert:
    """A certificate signed by `ca`; `serial` should be random (secrets.randbits(64))."""
    unsigned = Cert(
        serial=serial,
        name=name,
        wg_ip=wg_ip,
        public_key=public_key,
        subnets=tuple(subnets),
        not_before=not_before,
        not_after=not_after,
        issuer=ca.public,
        signature=bytes(SIG_LEN),
    )
    return dataclasses.replace(unsigned, signature=ca.sign_bytes(_tbs(unsigned)))


@functools.lru_cache(maxsize=16)
def _ed25519(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(cert: Cert, ca_public_key: bytes, now: float, revoked: Collection[int] = frozenset()) -> None:
    """Raise CertError unless `cert` is signed by the CA, unrevoked and valid at `now` (wall
    clock, unix seconds). The signature is checked first: a forgery is never 'expired'."""
    if not isinstance(ca_public_key, bytes) or len(ca_public_key) != KEY_LEN:
        raise CertError(f"CA public key: must be {KEY_LEN} bytes")
    if cert.issuer != ca_public_key:
        raise CertError(f"other issuer: signed by {b64(cert.issuer)}, not by this network's CA")
    try:
        _ed25519(ca_public_key).verify(cert.signature, SIGN_CONTEXT + _tbs(cert))
    except (InvalidSignature, ValueError):
        raise CertError("bad signature") from None
    if cert.serial in revoked:
        raise CertError(f"revoked: serial {format_serial(cert.serial)}")
    if now < cert.not_before:
        raise CertError(f"not yet valid: valid from {cert.not_before}, now is {int(now)}")
    if now > cert.not_after:
        raise CertError(f"expired: valid until {cert.not_after}, now is {int(now)}")


def check_claim(
    cert: Cert, name: str, wg_ip: IPv4Address, public_key: str, subnets: Iterable[IPv4Network] = ()
) -> None:
    """Raise CertError when a node claims what its (verified) certificate does not give it.
    A claimed subnet may be any part of a certified one."""
    if name != cert.name:
        raise CertError(f"claims name {name!r}, certificate is for {cert.name!r}")
    if wg_ip != cert.wg_ip:
        raise CertError(f"claims address {wg_ip}, certificate gives {cert.wg_ip}")
    if public_key != cert.public_key:
        raise CertError("claims another WireGuard public key than its certificate's")
    for net in subnets:
        if not any(net.subnet_of(own) for own in cert.subnets):
            raise CertError(f"claims subnet {net}, not in its certificate")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def fingerprint(cert: Cert) -> str:
    """SHA-256 of the encoding, hex: names one certificate (the serial names its revocation)."""
    return hashlib.sha256(encode(cert)).hexdigest()


def format_serial(serial: int) -> str:
    """As `cert show` prints it and net.yaml's revocation list takes it."""
    return f"{serial:016x}"
