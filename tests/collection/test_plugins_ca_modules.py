"""The node_cert and ca_revocations modules on their own (`ansible localhost -m ...`), with a
real CA made by the venv's agent: what happens when the CA key is away or vault-encrypted,
when inputs are wrong, and when a removed host's certificate cannot be read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from collection_paths import VENV_BIN

pytestmark = pytest.mark.collection

AGENT = VENV_BIN / "wg_netmanager"
CLI = [sys.executable, "-m", "wg_netmanager"]
KEY = "S1lqKs87LPBVf8ElMv6rti03NdUpym+so9QvDCmIsU4="


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    if not AGENT.exists():
        pytest.skip("the agent is not installed in .venv (run scripts/setup)")
    directory = tmp_path / "ca"
    subprocess.run([str(AGENT), "ca", "init", str(directory)], check=True, capture_output=True)
    return directory


def cert_args(ca: Path, **extra: Any) -> dict[str, Any]:
    args = {"ca_dir": str(ca), "host": "alpha", "name": "alpha", "wg_ip": "10.1.1.1", "public_key": KEY}
    args["agent_command"] = CLI
    args.update(extra)
    return args


def test_signs_once_then_keeps_the_certificate(run_adhoc: Any, ca: Path) -> None:
    first, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    assert first["changed"] and first["reasons"] == ["no certificate yet"], first
    assert first["cert"].startswith("-----BEGIN WG_NETMANAGER CERTIFICATE-----\n")
    assert (ca / "issued/alpha.crt").read_text() == first["cert"]
    again, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    assert not again["changed"] and again["serial"] == first["serial"] and again["cert"] == first["cert"]
    assert sorted(p.name for p in (ca / "issued").iterdir()) == ["alpha.crt"]  # no temporary left


def test_the_ca_key_is_needed_only_to_sign(run_adhoc: Any, ca: Path) -> None:
    run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    (ca / "ca.key").rename(ca.parent / "offline.key")
    kept, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    assert not kept["changed"] and not kept.get("failed"), kept
    needed, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca, wg_ip="10.1.1.9"))
    assert needed["failed"]
    assert "ca.key: cannot read the CA key" in needed["msg"] and "put it back" in needed["msg"]
    assert needed["reasons"] == ["address 10.1.1.1 -> 10.1.1.9"]


def test_a_vault_encrypted_ca_key_is_explained_and_never_shown(run_adhoc: Any, ca: Path) -> None:
    secret = (ca / "ca.key").read_text()
    (ca / "ca.key").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162630a\n")
    result, proc = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    assert result["failed"] and "ansible-vault encrypted" in result["msg"], result
    body = secret.splitlines()[1]
    assert body not in proc.stdout + proc.stderr


def test_check_mode_signs_nothing(run_adhoc: Any, ca: Path) -> None:
    result, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca), "--check", "--diff")
    assert result["changed"] and result["cert"] is None
    assert not (ca / "issued").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"renew_days": 365}, "renew_days (365) must be at least 0 and less than days (365)"),
        ({"wg_ip": "10.1.1"}, "alpha: wg_ip: '10.1.1' is not an IPv4 address"),
        ({"subnets": ["10.9.0.1/16"]}, "wg_cert_subnets: '10.9.0.1/16' is not an IPv4 network"),
        ({"host": "../x"}, "inventory host '../x' cannot name a certificate file"),
        ({"public_key": "bm90IGEga2V5"}, "--public-key: must be a WireGuard public key"),
    ],
)
def test_bad_inputs_fail_with_a_message(
    run_adhoc: Any, ca: Path, extra: dict[str, Any], message: str
) -> None:
    result, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca, **extra))
    assert result["failed"] and message in result["msg"], result


def test_no_ca_is_an_error_naming_the_directory(run_adhoc: Any, tmp_path: Path) -> None:
    result, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(tmp_path / "none"))
    assert result["failed"] and "no network CA there" in result["msg"] and "ca init" in result["msg"]


def revocations(ca: Path, members: list[str], **extra: Any) -> dict[str, Any]:
    return {"ca_dir": str(ca), "members": members, "agent_command": CLI, **extra}


def test_a_removed_host_is_revoked_once(run_adhoc: Any, ca: Path) -> None:
    signed, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    checked, _ = run_adhoc("wg_netmanager.mesh.ca_revocations", revocations(ca, ["beta"]), "--check")
    assert checked["changed"] and checked["serials"] == [signed["serial"]]
    assert (ca / "issued/alpha.crt").exists() and not (ca / "revoked.json").exists()
    done, _ = run_adhoc("wg_netmanager.mesh.ca_revocations", revocations(ca, ["beta"]))
    assert done["changed"] and done["serials"] == [signed["serial"]]
    assert [e["host"] for e in done["added"]] == ["alpha"]
    assert (ca / f"revoked/alpha-{signed['serial']}.crt").exists()
    again, _ = run_adhoc("wg_netmanager.mesh.ca_revocations", revocations(ca, ["beta"]))
    assert not again["changed"] and again["serials"] == [signed["serial"]]
    # Taken back in: a new certificate, not the revoked one.
    back, _ = run_adhoc("wg_netmanager.mesh.node_cert", cert_args(ca))
    assert back["changed"] and back["serial"] != signed["serial"]


def test_a_hand_made_entry_stays(run_adhoc: Any, ca: Path) -> None:
    (ca / "revoked.json").write_text(json.dumps({"revoked": [{"serial": "00000000000000ab"}]}))
    result, _ = run_adhoc("wg_netmanager.mesh.ca_revocations", revocations(ca, []))
    assert not result["changed"] and result["serials"] == ["00000000000000ab"]


def test_an_unreadable_certificate_of_a_removed_host_stops_the_run(run_adhoc: Any, ca: Path) -> None:
    (ca / "issued").mkdir()
    (ca / "issued/gone.crt").write_text("garbage\n")
    result, _ = run_adhoc("wg_netmanager.mesh.ca_revocations", revocations(ca, []))
    assert result["failed"] and "host gone left the mesh" in result["msg"] and "by hand" in result["msg"]
