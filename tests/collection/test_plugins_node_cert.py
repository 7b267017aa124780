"""module_utils/node_cert.py: when a node's certificate is signed again, which replaced one is
revoked, and how the revocation list grows and shrinks. Pure functions: `now` is given."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import node_cert as nc

NOW = 1_800_000_000
DAY = 86400
KEY = "S1lqKs87LPBVf8ElMv6rti03NdUpym+so9QvDCmIsU4="
OTHER_KEY = "gTG6kFF/3rBhbVLQTrP8shh7xs+cN/BjGieHOyY9uAU="


def shown(**fields: Any) -> dict[str, Any]:
    """A certificate as `cert show --json --ca` prints it: valid, a year left."""
    doc = {
        "serial": "9a915dface7bb0fa",
        "name": "alpha",
        "wgIp": "10.1.1.1",
        "publicKey": KEY,
        "subnets": [],
        "notBefore": NOW - DAY,
        "notAfter": NOW + 365 * DAY,
        "status": "valid",
        "verified": True,
    }
    doc.update(fields)
    return doc


def desired(**fields: Any) -> dict[str, Any]:
    args = {"name": "alpha", "wg_ip": "10.1.1.1", "public_key": KEY, "subnets": []}
    args.update(fields)
    return nc.desired_cert(**args)


def reasons(
    current: dict[str, Any] | None, want: dict[str, Any], revoked: list[str] = (), renew: int = 30
) -> list[str]:
    return nc.renewal_reasons(current, want, list(revoked), NOW, renew)


def test_a_matching_valid_certificate_is_kept() -> None:
    assert reasons(shown(), desired()) == []
    assert not nc.supersedes(shown(), desired())


def test_subnet_order_does_not_matter() -> None:
    current = shown(subnets=["192.168.2.0/24", "10.9.0.0/16"])
    assert reasons(current, desired(subnets=["10.9.0.0/16", "192.168.2.0/24"])) == []


def test_no_certificate_yet() -> None:
    assert reasons(None, desired()) == ["no certificate yet"]
    assert not nc.supersedes(None, desired())


@pytest.mark.parametrize("status", ["expired", "not signed by this CA", "unreadable (bad file)"])
def test_a_certificate_that_does_not_verify_is_replaced_not_revoked(status: str) -> None:
    current = shown(verified=False, status=status)
    assert reasons(current, desired()) == [f"the certificate is not valid: {status}"]
    assert not nc.supersedes(current, desired())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "alpha2"}, "name alpha -> alpha2"),
        ({"wg_ip": "10.1.1.9"}, "address 10.1.1.1 -> 10.1.1.9"),
        ({"public_key": OTHER_KEY}, f"public key {KEY} -> {OTHER_KEY}"),
        ({"subnets": ["192.168.2.0/24"]}, "subnets none -> 192.168.2.0/24"),
    ],
)
def test_an_identity_change_signs_again_and_revokes_the_old_one(
    change: dict[str, Any], expected: str
) -> None:
    want = desired(**change)
    assert reasons(shown(), want) == [expected]
    assert nc.supersedes(shown(), want)


def test_a_node_without_a_key_yet_needs_a_certificate_for_the_key_it_will_get() -> None:
    want = desired(public_key=None)
    assert reasons(shown(), want) == [f"public key {KEY} -> (made on the node)"]


def test_renewal_within_renew_days_only() -> None:
    assert reasons(shown(notAfter=NOW + 31 * DAY), desired()) == []
    assert reasons(shown(notAfter=NOW + 30 * DAY), desired()) == ["expires in 30 days (renewed within 30)"]
    assert reasons(shown(notAfter=NOW + 5 * DAY + 7), desired(), renew=0) == []
    # A renewal keeps the identity: nothing to revoke.
    assert not nc.supersedes(shown(notAfter=NOW + DAY), desired())


def test_a_revoked_serial_is_signed_again() -> None:
    assert reasons(shown(), desired(), revoked=["9A915DFACE7BB0FA"]) == ["serial 9a915dface7bb0fa is revoked"]


def test_several_reasons_are_all_given() -> None:
    got = reasons(shown(notAfter=NOW + DAY), desired(name="a2", subnets=["10.9.0.0/16"]))
    assert got == ["name alpha -> a2", "subnets none -> 10.9.0.0/16", "expires in 1 days (renewed within 30)"]


@pytest.mark.parametrize(
    ("subnets", "message"),
    [
        (["10.9.0.1/16"], "not an IPv4 network without host bits"),
        (["10.9.0.0"], "needs a prefix length"),
        (["10.9.0.0/16", "10.9.0.0/16"], "listed twice"),
        (["fd00::/8"], "not an IPv4 network"),
    ],
)
def test_bad_subnets_are_named(subnets: list[str], message: str) -> None:
    with pytest.raises(nc.CertPlanError, match=message):
        desired(subnets=subnets)


def test_a_bad_address_is_named() -> None:
    with pytest.raises(nc.CertPlanError, match="wg_ip: '10.1.1' is not an IPv4 address"):
        desired(wg_ip="10.1.1")


def entry(serial: str, not_after: int | None = NOW + DAY, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"serial": serial, **extra}
    if not_after is not None:
        doc["notAfter"] = not_after
    return doc


def test_merge_adds_new_serials_once() -> None:
    old = [entry("00000000000000aa")]
    new = [entry("00000000000000AA"), entry("aa"), entry("bb"), entry("0bb")]
    kept, added, dropped = nc.merge_revoked(old, new, NOW)
    assert [e["serial"] for e in kept] == ["00000000000000aa", "bb"]
    assert [e["serial"] for e in added] == ["bb"]
    assert dropped == []


def test_expired_entries_are_dropped_a_day_after_expiry_and_manual_ones_stay() -> None:
    old = [entry("01", NOW - DAY - 1), entry("02", NOW - DAY + 1), entry("03", None, reason="by hand")]
    kept, added, dropped = nc.merge_revoked(old, [entry("04", NOW - 5 * DAY)], NOW)
    assert [e["serial"] for e in kept] == ["02", "03"]
    assert [e["serial"] for e in dropped] == ["01", "04"]
    assert added == []  # already past its time: never listed


def test_serials_for_net_yaml_are_sorted_padded_hex_text() -> None:
    assert nc.serials_in_force([entry("ff"), entry("0000000000001289"), entry("AB"), entry("00ab")]) == [
        "00000000000000ab",
        "00000000000000ff",
        "0000000000001289",
    ]


def test_revocation_list_round_trip() -> None:
    entries = [nc.revocation(shown(), "alpha", "host no longer in the inventory group", NOW)]
    text = nc.dump_revoked(entries)
    assert nc.parse_revoked(text, "revoked.json") == entries
    assert entries[0] == {
        "serial": "9a915dface7bb0fa",
        "host": "alpha",
        "name": "alpha",
        "wgIp": "10.1.1.1",
        "notAfter": NOW + 365 * DAY,
        "revokedAt": "2027-01-15 08:00:00 UTC",
        "reason": "host no longer in the inventory group",
    }
    assert nc.parse_revoked("", "revoked.json") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a JSON document"),
        ('{"revoked": {}}', "expected an object with a list 'revoked'"),
        ('{"revoked": [{"serial": 12}]}', r"revoked\[0\]: needs a 'serial'"),
        ('{"revoked": [{"serial": "xyz"}]}', r"revoked\[0\]: needs a 'serial'"),
        ('{"revoked": [{"serial": "12", "notAfter": "soon"}]}', r"revoked\[0\].notAfter"),
    ],
)
def test_a_broken_revocation_list_is_named(text: str, message: str) -> None:
    with pytest.raises(nc.CertPlanError, match=message):
        nc.parse_revoked(text, "revoked.json")


def test_diff_text_shows_the_fields_not_the_signature() -> None:
    text = nc.describe(shown(signature="ab" * 64))
    assert "name: alpha\nwgIp: 10.1.1.1\n" in text
    assert "serial: 9a915dface7bb0fa" in text and "abab" not in text
    planned = nc.describe(dict(desired(public_key=None), notAfter=NOW))
    assert "serial: (new)" in planned and "(made on the node in the real run)" in planned
    assert nc.describe(None) == ""
    assert nc.describe({"verified": False, "status": "unreadable (x)"}) == "status: unreadable (x)\n"
