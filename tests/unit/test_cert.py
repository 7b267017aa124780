"""core.cert: the encoding (round trip, size, every rejection), signatures, validity, claims."""

from __future__ import annotations

import base64
import dataclasses
import struct
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wg_netmanager.core import cert as c
from wg_netmanager.core import checks
from wg_netmanager.core.checks import ConfigError

CA = c.CaKey(bytes(range(32)))
OTHER_CA = c.CaKey(bytes(range(1, 33)))
NODE_KEY = base64.b64encode(bytes(range(100, 132))).decode()
OTHER_KEY = base64.b64encode(bytes(range(200, 232))).decode()
NB, NA = 1_700_000_000, 1_700_000_000 + 365 * 86400
NETS = (IPv4Network("192.168.1.0/24"), IPv4Network("10.20.0.0/16"))
FIXED = struct.Struct("!BQQQ4s32s32s")  # the documented layout, spelled out independently


def make(ca: c.CaKey = CA, **kw: Any) -> c.Cert:
    fields: dict[str, Any] = dict(
        serial=0x0123456789ABCDEF,
        name="alice",
        wg_ip=IPv4Address("10.1.1.5"),
        public_key=NODE_KEY,
        subnets=NETS,
        not_before=NB,
        not_after=NA,
    )
    fields.update(kw)
    return c.sign(ca, **fields)


def raw(
    version: int = 1,
    nb: int = NB,
    na: int = NA,
    key: bytes = bytes(range(100, 132)),
    name: bytes = b"alice",
    name_len: int | None = None,
    nets: list[tuple[bytes, int]] | None = None,
    count: int | None = None,
    sig: bytes = bytes(64),
) -> bytes:
    nets = [(bytes([10, 0, 0, 0]), 8)] if nets is None else nets
    head = FIXED.pack(version, 7, nb, na, bytes([10, 1, 1, 5]), key, CA.public)
    body = bytes([len(name) if name_len is None else name_len]) + name
    body += bytes([len(nets) if count is None else count]) + b"".join(a + bytes([p]) for a, p in nets)
    return head + body + sig


def test_round_trip_and_layout() -> None:
    cert = make()
    data = c.encode(cert)
    assert c.decode(data) == cert
    assert data[0] == c.CERT_VERSION
    assert data[1:9] == (0x0123456789ABCDEF).to_bytes(8, "big")
    assert data[25:29] == bytes([10, 1, 1, 5])
    assert data[61:93] == CA.public
    assert data[93:99] == b"\x05alice"
    assert data[-64:] == cert.signature
    assert c.decode(raw()).subnets == (IPv4Network("10.0.0.0/8"),)


def test_size_bounds_fit_a_control_datagram() -> None:
    smallest = make(name="a", subnets=())
    largest = make(name="n" * 32, subnets=[IPv4Network(f"10.{i}.0.0/16") for i in range(8)])
    assert len(c.encode(smallest)) == c.MIN_SIZE == 160
    assert len(c.encode(largest)) == c.MAX_SIZE == 231
    assert len(base64.b64encode(c.encode(largest))) == 308  # as it would travel in a JSON body
    assert c.decode(c.encode(largest)) == largest


BAD = [
    (b"", "truncated"),
    (raw(version=2), "unknown certificate version 2"),
    (raw(version=0), "unknown certificate version 0"),
    (raw()[:-1], "truncated"),
    (raw()[:100], "truncated"),
    (raw() + b"\0", "trailing bytes"),
    (raw(name_len=0, name=b""), "name: length 0"),
    (raw(name_len=33, name=b"a" * 33), "name: length 33"),
    (raw(name_len=6), "subnets: 10 listed"),  # the name swallowed the count; 10. is next
    (raw(name=b"al\xe9ce"), "name: not ASCII"),
    (raw(name=b"-alice"), "name: invalid name"),
    (raw(name=b"al ce"), "name: invalid name"),
    (raw(count=9, nets=[(bytes([10, i, 0, 0]), 16) for i in range(9)]), "subnets: 9 listed"),
    (raw(count=2), "truncated"),
    (raw(nets=[(bytes([10, 0, 0, 0]), 33)]), "prefix length 33"),
    (raw(nets=[(bytes([10, 0, 0, 1]), 8)]), "host bits set in 10.0.0.1/8"),
    (raw(nets=[(bytes([10, 0, 0, 0]), 8)] * 2), "listed twice"),
    (raw(nb=NA, na=NB), "not_after must be after not_before"),
    (raw(nb=NB, na=NB), "not_after must be after not_before"),
    (raw(na=c.MAX_TIME + 1), "validity: times"),
    (raw(key=bytes(32)), "all-zero key"),
    (bytes(c.MAX_SIZE + 1), "unknown certificate version 0"),
    (b"\x01" + bytes(c.MAX_SIZE), "too long"),
]


@pytest.mark.parametrize(("data", "reason"), BAD, ids=[r for _, r in BAD])
def test_decode_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(c.CertError) as info:
        c.decode(data)
    assert reason in info.value.reason


def test_decode_rejects_non_bytes_and_accepts_views() -> None:
    with pytest.raises(c.CertError):
        c.decode("not bytes")  # type: ignore[arg-type]
    assert c.decode(memoryview(raw())) == c.decode(raw())


def test_sign_rejects_what_decode_would() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "bad name"}, "name"),
        ({"subnets": [IPv4Network(f"10.{i}.0.0/16") for i in range(9)]}, "at most 8"),
        ({"not_after": NB}, "after not_before"),
        ({"public_key": "AAAA"}, "public_key"),
        ({"serial": 2**64}, "serial"),
        ({"not_before": 1.5}, "whole unix seconds"),
    ]
    for kw, reason in cases:
        with pytest.raises(c.CertError, match=reason):
            make(**kw)
    with pytest.raises(c.CertError):
        c.CaKey(b"short")


def test_verify_accepts_a_valid_certificate_at_both_ends() -> None:
    cert = make()
    for now in (NB, NB + 1.5, NA):
        c.verify(cert, CA.public, now, revoked={1, 2})


@pytest.mark.parametrize(
    ("cert", "now", "revoked", "reason"),
    [
        (make(ca=OTHER_CA), NB + 1, (), "other issuer"),
        (dataclasses.replace(make(), name="mallory"), NB + 1, (), "bad signature"),
        (dataclasses.replace(make(), subnets=(IPv4Network("0.0.0.0/0"),)), NB + 1, (), "bad signature"),
        (dataclasses.replace(make(), signature=bytes(64)), NB + 1, (), "bad signature"),
        (dataclasses.replace(make(), not_after=NA + 1), NA + 1, (), "bad signature"),  # not "expired"
        (make(), NB + 1, {0x0123456789ABCDEF}, "revoked: serial 0123456789abcdef"),
        (make(), NB - 1, (), "not yet valid"),
        (make(), NA + 0.5, (), "expired"),
    ],
    ids=["issuer", "name", "subnets", "signature", "forged-expiry", "revoked", "early", "expired"],
)
def test_verify_rejects(cert: c.Cert, now: float, revoked: Any, reason: str) -> None:
    with pytest.raises(c.CertError) as info:
        c.verify(cert, CA.public, now, revoked)
    assert info.value.reason.startswith(reason)


def test_verify_rejects_a_malformed_ca_key() -> None:
    with pytest.raises(c.CertError, match="CA public key"):
        c.verify(make(), CA.public[:31], NB + 1)


def test_check_claim() -> None:
    cert = make()
    ip = IPv4Address("10.1.1.5")
    c.check_claim(cert, "alice", ip, NODE_KEY)
    c.check_claim(cert, "alice", ip, NODE_KEY, [IPv4Network("192.168.1.128/25"), NETS[1]])
    for args, reason in [
        (("bob", ip, NODE_KEY, ()), "claims name 'bob'"),
        (("alice", IPv4Address("10.1.1.6"), NODE_KEY, ()), "claims address 10.1.1.6"),
        (("alice", ip, OTHER_KEY, ()), "another WireGuard public key"),
        (("alice", ip, NODE_KEY, [IPv4Network("192.168.0.0/16")]), "claims subnet 192.168.0.0/16"),
        (("alice", ip, NODE_KEY, [IPv4Network("172.16.0.0/12")]), "claims subnet"),
    ]:
        with pytest.raises(c.CertError, match=reason):
            c.check_claim(cert, *args)
    with pytest.raises(c.CertError):
        c.check_claim(make(subnets=()), "alice", ip, NODE_KEY, [IPv4Network("10.9.0.0/24")])


def test_secrets_stay_out_of_reprs() -> None:
    seed = bytes(range(32))
    text = repr(CA) + str(CA) + repr(make())
    assert "redacted" in repr(CA) and CA.public_b64 in repr(CA)
    for secret in (base64.b64encode(seed).decode(), seed.hex(), repr(seed)):
        assert secret not in text
    assert CA.seed() == seed
    assert make().signature.hex() not in repr(make())


def test_helpers() -> None:
    cert = make()
    assert c.format_serial(0xAB) == "00000000000000ab"
    assert c.fingerprint(cert) == c.fingerprint(c.decode(c.encode(cert)))
    assert len(c.fingerprint(cert)) == 64
    assert checks.serial("0123456789abcdef", "net.yaml", "f") == 0x0123456789ABCDEF
    assert checks.serial("AB", "net.yaml", "f") == 0xAB
    for bad in (123, "0x12", "", "1" * 17, "xyz", None):
        with pytest.raises(ConfigError):
            checks.serial(bad, "net.yaml", "network.revokedCerts[0]")
    with pytest.raises(ConfigError, match="quoted hex serial"):
        checks.serial(1234, "net.yaml", "network.revokedCerts[0]")
    assert checks.ca_key(CA.public_b64 + "\n", "net.yaml", "f") == CA.public
    for bad in (None, "###", base64.b64encode(bytes(31)).decode()):
        with pytest.raises(ConfigError):
            checks.ca_key(bad, "net.yaml", "network.caPublicKey")


VALID = c.encode(make())
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_cert_errors(data: bytes) -> c.Cert | None:
    try:
        cert = c.decode(data)
    except c.CertError:
        return None
    assert c.encode(cert) == data  # one encoding per certificate: the signature covers it
    return cert


@FUZZ
@given(st.binary(max_size=c.MAX_SIZE + 8))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_cert_errors(data)
    _only_cert_errors(b"\x01" + data)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, len(VALID)),
    st.binary(max_size=6),
)
def test_fuzz_mutated_certificate(edits: list[tuple[int, int]], cut: int, extra: bytes) -> None:
    data = bytearray(VALID)
    for index, value in edits:
        data[index] = value
    for candidate in (bytes(data), bytes(data[:cut]) + extra):
        cert = _only_cert_errors(candidate)
        if cert is not None and candidate != VALID:
            with pytest.raises(c.CertError):  # whatever still parses no longer verifies
                c.verify(cert, CA.public, NB + 1)
