"""A bad mesh inventory stops playbooks/site.yml in play 1, before any host is contacted.

The mesh hosts point at TEST-NET-1 addresses (RFC 5737) over ssh: if the playbook ever
reached play 2, it would report them unreachable instead of the validation message.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from collection_paths import COLLECTION_ROOT, ansible_bin

pytestmark = pytest.mark.collection

GOOD = {
    "alpha": {"wg_ip": "10.1.1.1"},
    "beta": {"wg_ip": "10.1.1.2", "wg_static_endpoint": "198.51.100.2:50000"},
    "charlie": {"wg_ip": "10.1.1.3"},
}


def _inventory(tmp_path: Path, nodes: dict[str, dict[str, Any]]) -> Path:
    hosts = {}
    for index, (name, hostvars) in enumerate(nodes.items(), start=1):
        hosts[name] = {
            "ansible_host": f"192.0.2.{index}",
            "ansible_connection": "ssh",
            "ansible_ssh_common_args": "-o ConnectTimeout=2 -o BatchMode=yes",
            **hostvars,
        }
    group_vars = {"wg_subnet": "10.1.1.0/24", "wg_shared_key_file": str(tmp_path / "mesh.key")}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"wg_mesh": {"vars": group_vars, "hosts": hosts}}}}))
    return path


def _run(env: dict[str, str], inventory: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(inventory), "playbooks/site.yml", *extra],
        cwd=COLLECTION_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON output:\n{proc.stdout}\n{proc.stderr}") from None


def _failure(doc: dict[str, Any]) -> str:
    """The one failed task's message; also checks that only play 1 ran, on localhost only."""
    assert [play["play"]["name"] for play in doc["plays"]] == ["Validate the mesh inventory"]
    failed = []
    for task in doc["plays"][0]["tasks"]:
        assert set(task["hosts"]) == {"localhost"}, task["task"]["name"]
        if task["hosts"]["localhost"].get("failed"):
            failed.append(task["hosts"]["localhost"]["msg"])
    assert len(failed) == 1, failed
    return str(failed[0])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"charlie": {"wg_ip": "10.1.1.1"}}, ["charlie", "wg_ip", "10.1.1.1"], id="duplicate-wg_ip"
        ),
        pytest.param(
            {"charlie": {"wg_ip": "10.9.0.3"}}, ["charlie", "wg_ip", "outside"], id="wg_ip-outside-subnet"
        ),
        pytest.param({"beta": {"wg_ip": "10.1.1.2"}}, ["wg_static_endpoint", "static"], id="no-static-node"),
        pytest.param(
            {"beta": {"wg_ip": "10.1.1.2", "wg_static_endpoint": "198.51.100.2"}},
            ["beta", "wg_static_endpoint", "198.51.100.2"],
            id="endpoint-without-port",
        ),
        pytest.param(
            {"beta": {"wg_ip": "10.1.1.2", "wg_static_endpoint": "198.51.100.2:99999"}},
            ["beta", "wg_static_endpoint"],
            id="endpoint-port-out-of-range",
        ),
        pytest.param({"alpha": {}}, ["alpha", "wg_ip"], id="missing-wg_ip"),
    ],
)
def test_bad_inventory_fails_in_play_one(
    ansible_env: dict[str, str], tmp_path: Path, change: dict[str, Any], expected: list[str]
) -> None:
    rc, doc = _run(ansible_env, _inventory(tmp_path, {**GOOD, **change}))
    assert rc != 0
    message = _failure(doc)
    for word in expected:
        assert word in message, message
    assert not (tmp_path / "mesh.key").exists(), "the shared key was made for a bad mesh"


def test_inconsistent_subnet_is_named(ansible_env: dict[str, str], tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, {**GOOD, "charlie": {"wg_ip": "10.1.1.3", "wg_subnet": "10.2.0.0/16"}})
    rc, doc = _run(ansible_env, inventory)
    assert rc != 0
    message = _failure(doc)
    assert "wg_subnet" in message and "charlie=10.2.0.0/16" in message, message


def test_good_inventory_passes_play_one(ansible_env: dict[str, str], tmp_path: Path) -> None:
    """The same inventory, valid: play 1 passes, makes the key, and play 2 finds the
    (unreachable) hosts, which shows the bad cases above really stopped before them."""
    rc, doc = _run(ansible_env, _inventory(tmp_path, GOOD))
    assert rc != 0
    names = [play["play"]["name"] for play in doc["plays"]]
    assert names[0] == "Validate the mesh inventory"
    assert len(names) == 2
    assert all(not task["hosts"]["localhost"].get("failed") for task in doc["plays"][0]["tasks"])
    assert doc["stats"]["alpha"]["unreachable"] == 1
    key = tmp_path / "mesh.key"
    assert key.exists() and key.stat().st_mode & 0o777 == 0o600
