"""module_utils/leaves.py (the leaves' checks) and module_utils/leaf_files.py (their key,
wg-quick configuration and QR code), and the leaf_key and leaf_config modules."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import leaf_files
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import leaves as lv
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import mesh_validate as mv

SUBNET = "10.1.1.0/24"
NODES = [
    {"host": "alpha", "wg_ip": "10.1.1.1"},
    {"host": "beta", "wg_ip": "10.1.1.2", "static_endpoint": "198.51.100.2:50000"},
    {"host": "charlie", "name": "gw", "wg_ip": "10.1.1.3", "static_endpoint": "gw.example.org:51820"},
]


def check(*leaves: dict[str, Any]) -> dict[str, Any]:
    nodes = mv.validate_mesh(SUBNET, NODES)["nodes"]
    return lv.validate_leaves(SUBNET, nodes, list(leaves))


def test_defaults_home_the_first_static_node_and_route_the_subnet() -> None:
    result = check({"host": "phone", "wg_ip": "10.1.1.50"})
    assert result["problems"] == []
    assert result["leaves"] == [
        {
            "host": "phone",
            "name": "phone",
            "wg_ip": "10.1.1.50",
            "address": "10.1.1.50/24",
            "home_host": "beta",
            "home": "beta",
            "endpoint": "198.51.100.2:50000",
            "allowed_ips": ["10.1.1.0/24"],
            "dns": [],
            "keepalive": 25,
        }
    ]


def test_home_is_the_inventory_host_and_net_yaml_gets_its_node_name() -> None:
    result = check(
        {
            "host": "tablet",
            "name": "tab",
            "wg_ip": "10.1.1.51",
            "home": "charlie",
            "allowed_ips": ["0.0.0.0/0", "::/0"],
            "dns": ["10.1.1.2", "home.arpa"],
            "keepalive": "0",
        }
    )
    assert result["problems"] == []
    leaf = result["leaves"][0]
    assert (leaf["name"], leaf["home_host"], leaf["home"]) == ("tab", "charlie", "gw")
    assert leaf["endpoint"] == "gw.example.org:51820"
    assert leaf["allowed_ips"] == ["0.0.0.0/0", "::/0"]
    assert leaf["dns"] == ["10.1.1.2", "home.arpa"]
    assert leaf["keepalive"] == 0


def test_every_problem_is_reported_at_once_naming_host_and_variable() -> None:
    result = check(
        {"host": "phone", "wg_ip": "10.1.1.2"},  # beta's
        {"host": "tablet", "wg_ip": "10.9.9.9", "home": "alpha"},  # outside; not static
        {"host": "watch", "wg_ip": "10.1.1.60", "home": "gw"},  # a node name, not its host
        {"host": "tv", "name": "alpha", "wg_ip": "10.1.1.61", "allowed_ips": ["10.1.1.1/24"]},
        {
            "host": "car",
            "name": "bad name",
            "wg_ip": "10.1.1.62",
            "dns": ["not_a name!"],
            "keepalive": "often",
        },
        {"host": "kettle", "wg_ip": "10.1.1.62", "keepalive": 70000},
        {"host": "fridge"},
    )
    problems = result["problems"]
    for want in [
        "host phone: wg_ip 10.1.1.2 is also used by host beta",
        "host tablet: wg_ip 10.9.9.9 is outside wg_subnet 10.1.1.0/24",
        "host tablet: wg_leaf_home alpha is not a static node (it has no wg_static_endpoint)",
        "host watch: wg_leaf_home gw is not a host of wg_mesh (did you mean host charlie?)",
        "host tv: wg_name alpha is also used by host alpha",
        "host tv: wg_leaf_allowed_ips: 10.1.1.1/24 has host bits set (did you mean 10.1.1.0/24?)",
        "host car: wg_name 'bad name' is not a valid name (letters, digits, '_', '.', '-')",
        "host car: wg_leaf_dns: 'not_a name!' is neither an IP address nor a domain name",
        "host car: wg_leaf_keepalive 'often' is not a number of seconds",
        "host kettle: wg_ip 10.1.1.62 is also used by host car",
        "host kettle: wg_leaf_keepalive 70000 is out of range 0-65535 (0: off)",
        "host fridge: wg_ip is missing",
    ]:
        assert want in problems, problems
    assert len(problems) == 12, problems


def test_a_leaf_that_is_also_a_node_or_a_mesh_without_static_nodes() -> None:
    result = check({"host": "alpha", "name": "alpha-phone", "wg_ip": "10.1.1.70"})
    assert "host alpha: is in both wg_mesh and wg_leaves (a leaf runs no agent)" in result["problems"]
    nodes = mv.validate_mesh(SUBNET, [NODES[0]])["nodes"]
    result = lv.validate_leaves(SUBNET, nodes, [{"host": "phone", "wg_ip": "10.1.1.50"}])
    assert result["problems"] == [
        "host phone: wg_leaf_home: no static node in wg_mesh to be its home (one needs wg_static_endpoint)"
    ]


@pytest.mark.parametrize(
    ("allowed", "problem"),
    [
        ("10.0.0.0/8", "must be a non-empty list"),
        ([], "must be a non-empty list"),
        (["10.1.1.0"], "needs a prefix length"),
        (["nonsense"], "is not a CIDR"),
        (["10.0.0.0/8", "10.0.0.0/8"], "is listed twice"),
    ],
)
def test_allowed_ips_are_cidrs(allowed: Any, problem: str) -> None:
    result = check({"host": "phone", "wg_ip": "10.1.1.50", "allowed_ips": allowed})
    assert len(result["problems"]) == 1 and problem in result["problems"][0], result["problems"]
    assert result["problems"][0].startswith("host phone: wg_leaf_allowed_ips")


# --- leaf_files ---------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    where = tmp_path / "mesh-leaves"
    first = leaf_files.ensure_key(str(where), "phone", check=False)
    assert first["changed"] is True
    text = (where / "phone.key").read_text()
    assert len(base64.b64decode(text.strip())) == 32 and text.endswith("\n")
    assert mode(where) == 0o700 and mode(where / "phone.key") == 0o600
    again = leaf_files.ensure_key(str(where), "phone", check=False)
    assert again == {**first, "changed": False}
    assert (where / "phone.key").read_text() == text
    # A loosened mode is put back, and only that changes.
    (where / "phone.key").chmod(0o644)
    assert leaf_files.ensure_key(str(where), "phone", check=True)["changed"] is True
    assert mode(where / "phone.key") == 0o644
    assert leaf_files.ensure_key(str(where), "phone", check=False)["changed"] is True
    assert mode(where / "phone.key") == 0o600 and (where / "phone.key").read_text() == text


def test_check_mode_writes_no_key(tmp_path: Path) -> None:
    where = tmp_path / "mesh-leaves"
    result = leaf_files.ensure_key(str(where), "phone", check=True)
    assert result == {"changed": True, "path": str(where / "phone.key"), "public_key": None}
    assert not where.exists()
    result = leaf_files.ensure_config(str(where), "phone", True, **SETTINGS)
    assert result["changed"] is True and not where.exists()


def test_public_key_is_wg_pubkeys() -> None:
    # RFC 7748 6.1: Alice's private and public keys.
    private = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    public = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert leaf_files.public_key(base64.b64encode(private).decode()) == base64.b64encode(public).decode()


def test_a_file_that_is_not_a_key_is_named_and_not_shown(tmp_path: Path) -> None:
    (tmp_path / "phone.key").write_text("secret-ish text\n")
    with pytest.raises(leaf_files.LeafFileError) as info:
        leaf_files.ensure_key(str(tmp_path), "phone", check=False)
    assert str(tmp_path / "phone.key") in str(info.value) and "secret" not in str(info.value)


SETTINGS = {
    "address": "10.1.1.50/24",
    "peer_public_key": "HOMEbetaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "endpoint": "198.51.100.2:50000",
    "allowed_ips": ["10.1.1.0/24", "192.168.50.0/24"],
    "dns": ["10.1.1.2"],
    "keepalive": 25,
}


def test_config_and_qr_are_written_when_they_change_only(tmp_path: Path) -> None:
    where = str(tmp_path)
    key = leaf_files.ensure_key(where, "phone", check=False)
    private = (tmp_path / "phone.key").read_text().strip()
    first = leaf_files.ensure_config(where, "phone", False, **SETTINGS)
    assert first == {
        "changed": True,
        "public_key": key["public_key"],
        "config_file": str(tmp_path / "phone.conf"),
        "qr_file": str(tmp_path / "phone.png"),
    }
    assert (tmp_path / "phone.conf").read_text() == (
        f"[Interface]\nPrivateKey = {private}\nAddress = 10.1.1.50/24\nDNS = 10.1.1.2\n\n"
        "[Peer]\nPublicKey = HOMEbetaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nEndpoint = 198.51.100.2:50000\n"
        "AllowedIPs = 10.1.1.0/24, 192.168.50.0/24\nPersistentKeepalive = 25\n"
    )
    assert (tmp_path / "phone.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mode(tmp_path / "phone.conf") == 0o600 and mode(tmp_path / "phone.png") == 0o600
    assert leaf_files.ensure_config(where, "phone", False, **SETTINGS)["changed"] is False
    moved = {**SETTINGS, "endpoint": "198.51.100.9:50000"}
    before = (tmp_path / "phone.png").read_bytes()
    assert leaf_files.ensure_config(where, "phone", True, **moved)["changed"] is True
    assert (tmp_path / "phone.png").read_bytes() == before
    assert leaf_files.ensure_config(where, "phone", False, **moved)["changed"] is True
    assert "Endpoint = 198.51.100.9:50000\n" in (tmp_path / "phone.conf").read_text()
    assert (tmp_path / "phone.png").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phone.conf", "phone.key", "phone.png"]


def test_config_without_a_key_fails_outside_check_mode(tmp_path: Path) -> None:
    with pytest.raises(leaf_files.LeafFileError, match="phone.key does not exist"):
        leaf_files.ensure_config(str(tmp_path), "phone", False, **SETTINGS)


def test_terminal_qr_prints_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    leaf_files.qr_terminal("[Interface]\n")
    assert "\u2588" in capsys.readouterr().out


# --- the modules, through Ansible ---------------------------------------------------------


def test_modules_report_changes_and_never_the_private_key(run_adhoc: Any, tmp_path: Path) -> None:
    where = str(tmp_path / "leaves")
    args = {"dir": where, "name": "phone"}
    result, _ = run_adhoc("wg_netmanager.mesh.leaf_key", args, "--check")
    assert result["changed"] is True and result["public_key"] is None
    assert not (tmp_path / "leaves").exists()
    result, proc = run_adhoc("wg_netmanager.mesh.leaf_key", args)
    assert result["changed"] is True and len(base64.b64decode(result["public_key"])) == 32
    private = (tmp_path / "leaves" / "phone.key").read_text().strip()
    outputs = [proc.stdout + proc.stderr]
    again, proc = run_adhoc("wg_netmanager.mesh.leaf_key", args)
    assert again["changed"] is False and again["public_key"] == result["public_key"]
    config, proc = run_adhoc("wg_netmanager.mesh.leaf_config", {**args, **SETTINGS})
    assert config["changed"] is True and config["public_key"] == result["public_key"]
    outputs.append(proc.stdout + proc.stderr)
    config, proc = run_adhoc("wg_netmanager.mesh.leaf_config", {**args, **SETTINGS})
    assert config["changed"] is False
    assert all(private not in text for text in outputs + [proc.stdout + proc.stderr])
