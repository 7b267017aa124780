"""X25519 key math, checked against RFC 7748's test vector."""

from __future__ import annotations

import base64

import pytest

from wg_netmanager.backends.keys import b64_to_hex, generate_private_key, hex_to_b64, is_zero, public_key

# RFC 7748, section 6.1 (Alice).
ALICE_PRIV = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def test_public_key_matches_rfc7748():
    assert b64_to_hex(public_key(hex_to_b64(ALICE_PRIV))) == ALICE_PUB


def test_generate_gives_distinct_32_byte_keys():
    a, b = generate_private_key(), generate_private_key()
    assert a != b and len(base64.b64decode(a)) == 32
    assert public_key(a) != public_key(b)


def test_hex_round_trip():
    key = generate_private_key()
    assert hex_to_b64(b64_to_hex(key)) == key


@pytest.mark.parametrize("bad", ["", "abc", base64.b64encode(b"x" * 31).decode(), "!" * 44])
def test_bad_keys_rejected(bad: str):
    with pytest.raises(ValueError):
        public_key(bad)


def test_is_zero():
    assert is_zero("") and is_zero(base64.b64encode(bytes(32)).decode())
    assert not is_zero(generate_private_key())
