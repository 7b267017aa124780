"""What a node believes of another node's claim to a name and an address.

Every message's sender is proven by the control channel (wire.py): a claim is always made
under the claimant's own WireGuard key. In shared-key mode that is all: any member may claim
any name or address no live node holds. With a network CA, a claim (a `NodeInfo`: in a
HELLO, a HELLO_ACK or a table entry) is believed only with a certificate signed by the CA,
valid now, not revoked, for exactly that name, address and key.

On the wire a certificate travels in its compact form, without what the NodeInfo beside it
already says (name, wgIp, public key) or what every node knows (the CA's key)::

    serial 8 | not_before 8 | not_after 8 | n_subnets 1 | subnets 5k | signature 64

89 to 129 bytes. The receiver rebuilds the whole certificate from the NodeInfo it came with,
so one certificate check covers the claim too: another node's certificate, a self-signed one
or one for another address simply does not verify. Pure code: the wall-clock time is an
argument (validity is the one thing here that needs it).
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from collections.abc import Collection
from ipaddress import IPv4Address, IPv4Network
from typing import Optional, Union

from .cert import MAX_SUBNETS, SIG_LEN, Cert, CertError, format_serial, verify

_HEAD = struct.Struct("!QQQB")
_SUBNET = struct.Struct("!4sB")
MAX_COMPACT = _HEAD.size + MAX_SUBNETS * _SUBNET.size + SIG_LEN
CACHE = 8192  # decoded and signature-checked certificates kept (a mesh's worth, and more)
NO_SIGNATURE = "certificate not signed by this network's CA for this name, address and key"


def compact(cert: Cert) -> bytes:
    head = _HEAD.pack(cert.serial, cert.not_before, cert.not_after, len(cert.subnets))
    nets = b"".join(_SUBNET.pack(s.network_address.packed, s.prefixlen) for s in cert.subnets)
    return head + nets + cert.signature


def expand(blob: bytes, name: str, wg_ip: IPv4Address, public_key: str, issuer: bytes) -> Cert:
    """The certificate `blob` (compact form) is, if it is the one for this claim."""
    if not isinstance(blob, bytes) or len(blob) < _HEAD.size + SIG_LEN or len(blob) > MAX_COMPACT:
        raise CertError("certificate: malformed")
    serial, not_before, not_after, count = _HEAD.unpack_from(blob)
    if len(blob) != _HEAD.size + count * _SUBNET.size + SIG_LEN:
        raise CertError("certificate: malformed")
    subnets = []
    for i in range(count):
        addr, prefix = _SUBNET.unpack_from(blob, _HEAD.size + i * _SUBNET.size)
        try:
            subnets.append(IPv4Network((addr, prefix)))
        except ValueError:
            raise CertError("certificate: malformed subnet") from None
    return Cert(
        serial=serial,
        name=name,
        wg_ip=wg_ip,
        public_key=public_key,
        subnets=tuple(subnets),
        not_before=not_before,
        not_after=not_after,
        issuer=issuer,
        signature=blob[-SIG_LEN:],
    )


def check_own(
    cert: Cert,
    name: str,
    wg_ip: IPv4Address,
    public_key: str,
    ca: Optional[bytes],
    revoked: Collection[int],
    wall: float,
) -> None:
    """CertError unless `cert` is one this node can present: its own name, address and key,
    and (with a CA configured) signed by it, valid now and not revoked. Checked at start, so
    that a wrong file is one clear line, not a node the others silently refuse."""
    if cert.name != name:
        raise CertError(f"certificate is for {cert.name!r}, this node is {name!r}")
    if cert.wg_ip != wg_ip:
        raise CertError(f"certificate gives address {cert.wg_ip}, this node is {wg_ip}")
    if cert.public_key != public_key:
        raise CertError(f"certificate is for WireGuard key {cert.public_key}, this node's is {public_key}")
    if ca is not None:
        verify(cert, ca, wall, revoked)
    elif wall > cert.not_after:
        raise CertError(f"expired: valid until {cert.not_after}, now is {int(wall)}")


Verdict = Union[Cert, str]  # the signature-checked certificate, or why there is none


class Trust:
    """Checks claims against the network CA, if any (None: shared-key mode, every claim under
    its own key is believed). Signature checks are cached per (certificate, claim); validity
    and revocation are checked on every call."""

    def __init__(self, ca: Optional[bytes] = None, revoked: Collection[int] = frozenset()) -> None:
        self.ca = ca
        self.revoked = frozenset(revoked)
        self._cache: OrderedDict[tuple[bytes, str, IPv4Address, str], Verdict] = OrderedDict()
        # The soonest wall time at which a certificate `check`ed since this was last reset
        # becomes valid or expires: when what is believed changes with no message at all.
        self.soonest = math.inf

    @property
    def mode(self) -> str:
        return "shared-key" if self.ca is None else "ca"

    def costly(self, blob: bytes, name: str, wg_ip: IPv4Address, public_key: str) -> bool:
        """Would checking this claim verify a signature (a CA, a certificate not seen yet)?"""
        return self.ca is not None and bool(blob) and (blob, name, wg_ip, public_key) not in self._cache

    def certificate(self, blob: bytes, name: str, wg_ip: IPv4Address, public_key: str) -> Verdict:
        """The certificate for this claim, signature checked, or why it is not one."""
        assert self.ca is not None
        if not blob:
            return "no certificate"
        key = (blob, name, wg_ip, public_key)
        verdict = self._cache.get(key)
        if verdict is not None:
            self._cache.move_to_end(key)
            return verdict
        try:
            cert = expand(blob, name, wg_ip, public_key, self.ca)
            verify(cert, self.ca, cert.not_before)  # signature only: validity is checked per use
            verdict = cert
        except CertError as exc:
            verdict = NO_SIGNATURE if exc.reason == "bad signature" else exc.reason
        self._cache[key] = verdict
        if len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        return verdict

    def check(
        self, blob: bytes, name: str, wg_ip: IPv4Address, public_key: str, wall: float
    ) -> Optional[str]:
        """Why this claim (with the certificate `blob`, compact) is not believed at `wall`
        (unix seconds), or None."""
        if self.ca is None:
            return None
        verdict = self.certificate(blob, name, wg_ip, public_key)
        if isinstance(verdict, str):
            return verdict
        for t in (verdict.not_before, verdict.not_after + 1):
            if wall < t < self.soonest:
                self.soonest = t
        if verdict.serial in self.revoked:
            return f"certificate revoked (serial {format_serial(verdict.serial)})"
        if wall < verdict.not_before:
            return f"certificate not valid before {verdict.not_before} (now {int(wall)})"
        if wall > verdict.not_after:
            return f"certificate expired at {verdict.not_after} (now {int(wall)})"
        return None
