"""The `wg_netmanager status` table."""

from __future__ import annotations

import pytest

from wg_netmanager.statusfmt import format_age, format_bytes, render

NOW = 1_732_540_000.0

DOC = {
    "name": "alice",
    "wgIp": "10.1.1.1",
    "publicKey": "QUxJQ0U=",
    "interface": "wg0",
    "backend": "wireguard-go",
    "converged": True,
    "drops": {"foreign": 0, "truncated": 0, "forged": 2, "replayed": 0, "stale": 1},
    "peers": [
        {
            "name": "gamma",
            "wgIp": "10.1.1.10",
            "publicKey": "R0FNTUE=",
            "path": "gateway",
            "gateway": "beta",
            "endpoint": None,
            "lastHandshake": 0,
            "rxBytes": 0,
            "txBytes": 0,
        },
        {
            "name": "beta",
            "wgIp": "10.1.1.2",
            "publicKey": "QkVUQQ==",
            "path": "static",
            "gateway": None,
            "endpoint": "198.51.100.2:50000",
            "lastHandshake": NOW - 3,
            "rxBytes": 123,
            "txBytes": 5 * 1024 * 1024 + 300 * 1024,
        },
    ],
}


def test_render_table() -> None:
    assert render(DOC, NOW) == (
        "node: alice  10.1.1.1  wg0 (wireguard-go)  converged: yes\n"
        "  public key: QUxJQ0U=\n"
        "  dropped: forged 2, stale 1\n"
        "\n"
        "NAME   WG IP      PATH     GATEWAY  ENDPOINT            HANDSHAKE     RX       TX\n"
        "beta   10.1.1.2   static   -        198.51.100.2:50000  3s ago     123 B  5.3 MiB\n"
        "gamma  10.1.1.10  gateway  beta     -                   never        0 B      0 B\n"
    )


def test_render_subnet_gateways() -> None:
    doc = {
        **DOC,
        "peers": DOC["peers"][1:],
        "dataPlane": {"state": "up", "restores": 0, "gateway": "subnet gateway: nft: not found"},
        "subnets": {
            "own": ["192.168.7.0/24"],
            "routes": [{"subnet": "192.168.50.0/24", "via": "delta", "path": "nat"}],
            "refused": [{"subnet": "8.0.0.0/8", "node": "eve", "reason": "not a private-use network"}],
        },
    }
    lines = render(doc, NOW).splitlines()
    assert lines[3:5] == ["  gateway for: 192.168.7.0/24", "  subnet gateway: nft: not found"]
    assert lines[-4:] == [
        "",
        "subnets:",
        "  192.168.50.0/24 via delta (nat)",
        "  refused: 8.0.0.0/8 of eve: not a private-use network",
    ]


def test_render_without_peers_and_not_converged() -> None:
    text = render({"name": "solo", "wgIp": "10.1.1.5", "interface": "wg1", "peers": []}, NOW)
    assert text.splitlines()[0] == "node: solo  10.1.1.5  wg1  converged: no"
    assert text.endswith("no peers known yet\n")


def test_render_tolerates_missing_fields() -> None:
    text = render({"peers": [{"name": "x"}, "junk"]}, NOW)
    assert text.splitlines()[-1].split() == ["x", "-", "-", "-", "-", "never", "-", "-"]
    assert "never" in text


def test_render_error_document() -> None:
    assert render({"error": "internal error"}, NOW) == "error: internal error\n"


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (0, "0s ago"),
        (59, "59s ago"),
        (61, "1m01s ago"),
        (3600 + 5 * 60, "1h05m ago"),
        (3 * 86400 + 4 * 3600, "3d04h ago"),
        (-5, "0s ago"),
    ],
)
def test_format_age(age: int, text: str) -> None:
    assert format_age(NOW - age, NOW) == text


@pytest.mark.parametrize("never", [0, 0.0, None, "x", False])
def test_format_age_never(never: object) -> None:
    assert format_age(never, NOW) == "never"


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (200 * 1024 * 1024, "200 MiB"),
        (3 * 1024**4, "3.0 TiB"),
        (None, "-"),
        (-1, "-"),
    ],
)
def test_format_bytes(count: object, text: str) -> None:
    assert format_bytes(count) == text


def test_render_exit_node() -> None:
    doc = {**DOC, "exitNode": {"offers": False, "uses": "beta", "active": True}}
    assert "  internet through exit node beta (in use)" in render(doc, NOW).splitlines()
    doc = {**DOC, "exitNode": {"offers": True, "uses": None, "active": False}}
    assert "  exit node for the mesh" in render(doc, NOW).splitlines()


def test_render_leaves_as_a_second_table() -> None:
    doc = {
        **DOC,
        "leaves": [
            {"name": "tablet", "wgIp": "10.1.1.51", "home": "beta", "path": "none", "gateway": None},
            {
                "name": "phone",
                "wgIp": "10.1.1.50",
                "home": "beta",
                "path": "nat",
                "gateway": None,
                "endpoint": "203.0.113.9:41000",
                "lastHandshake": NOW - 12,
            },
        ],
    }
    lines = render(doc, NOW).splitlines()
    at = lines.index("leaves:")
    assert lines[at + 1].split()[:3] == ["NAME", "WG", "IP"]
    phone = ["phone", "10.1.1.50", "nat", "-", "203.0.113.9:41000", "12s", "ago", "-", "-"]
    assert lines[at + 2].split() == phone
    assert lines[at + 3].split() == ["tablet", "10.1.1.51", "none", "-", "-", "never", "-", "-"]
    assert "leaves:" not in render(DOC, NOW)


def test_render_mobile_mode() -> None:
    doc = {**DOC, "mobile": {"active": ["charlie"]}}
    assert (
        "  mode mobile: direct paths only with traffic (now with: charlie)" in render(doc, NOW).splitlines()
    )
    doc = {**DOC, "mobile": {"active": []}}
    assert "  mode mobile: direct paths only with traffic (now with: none)" in render(doc, NOW).splitlines()
    assert not any("mode mobile" in line for line in render({**DOC, "mobile": None}, NOW).splitlines())
