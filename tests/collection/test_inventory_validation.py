"""A bad mesh inventory stops playbooks/site.yml in its checks of the whole mesh, on the
controller, before any host is contacted (the play gathers facts after them), also under
--limit, which does not shrink the inventory group the checks look at.

The mesh hosts point at TEST-NET-1 addresses (RFC 5737) over ssh: if the playbook ever got
past the checks, it would report them unreachable instead of the validation message.
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


PLAY = "Deploy WireGuard and the wg_netmanager agent"


def _failure(doc: dict[str, Any]) -> str:
    """The one failed task's message; also checks that the run stopped before any host was
    contacted (no facts gathered, no host unreachable) and that the task ran on localhost."""
    assert [play["play"]["name"] for play in doc["plays"]] == [PLAY]
    failed = []
    for task in doc["plays"][0]["tasks"]:
        assert task["task"]["name"] != "Gather facts"
        for result in task["hosts"].values():
            assert result["_ansible_delegated_vars"]["ansible_host"] == "localhost", task["task"]["name"]
            if result.get("failed"):
                failed.append(result["msg"])
    assert len(failed) == 1, failed
    assert all(stats["unreachable"] == 0 for stats in doc["stats"].values()), doc["stats"]
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
def test_bad_inventory_fails_before_any_host_is_contacted(
    ansible_env: dict[str, str], tmp_path: Path, change: dict[str, Any], expected: list[str]
) -> None:
    rc, doc = _run(ansible_env, _inventory(tmp_path, {**GOOD, **change}))
    assert rc != 0
    message = _failure(doc)
    for word in expected:
        assert word in message, message
    assert not (tmp_path / "mesh.key").exists(), "the shared key was made for a bad mesh"


def test_limit_checks_the_whole_mesh(ansible_env: dict[str, str], tmp_path: Path) -> None:
    """Under --limit alpha, charlie's mistake still stops the run: the checks look at the
    inventory group, not at the hosts of the run."""
    inventory = _inventory(tmp_path, {**GOOD, "charlie": {"wg_ip": "10.1.1.1"}})
    rc, doc = _run(ansible_env, inventory, "--limit", "alpha")
    assert rc != 0
    message = _failure(doc)
    assert "charlie" in message and "10.1.1.1" in message, message
    assert set(doc["stats"]) == {"alpha"}


def test_inconsistent_subnet_is_named(ansible_env: dict[str, str], tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, {**GOOD, "charlie": {"wg_ip": "10.1.1.3", "wg_subnet": "10.2.0.0/16"}})
    rc, doc = _run(ansible_env, inventory)
    assert rc != 0
    message = _failure(doc)
    assert "wg_subnet" in message and "charlie=10.2.0.0/16" in message, message


@pytest.mark.parametrize("limit", [(), ("--limit", "charlie")], ids=["all", "limit"])
def test_good_inventory_passes_the_checks(
    ansible_env: dict[str, str], tmp_path: Path, limit: tuple[str, ...]
) -> None:
    """The same inventory, valid: the checks pass, make the key, and the play then finds the
    (unreachable) hosts, which shows the bad cases above really stopped before them."""
    rc, doc = _run(ansible_env, _inventory(tmp_path, GOOD), *limit)
    assert rc != 0
    assert [play["play"]["name"] for play in doc["plays"]] == [PLAY]
    names = [task["task"]["name"] for task in doc["plays"][0]["tasks"]]
    # The first task that contacts the hosts: the probe for Python, before facts.
    assert names[-1].endswith("Look for Python 3 and the OS on the node (raw)"), names
    checks = doc["plays"][0]["tasks"][:-1]
    assert checks and all(not r.get("failed") for task in checks for r in task["hosts"].values())
    first = "charlie" if limit else "alpha"
    assert doc["stats"][first]["unreachable"] == 1
    key = tmp_path / "mesh.key"
    assert key.exists() and key.stat().st_mode & 0o777 == 0o600


def test_bad_leaves_are_reported_at_once_before_any_host_is_contacted(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """The leaves (group wg_leaves) are checked with the nodes: every problem in one message,
    naming the host and the variable; no leaf key is made for a bad mesh."""
    inventory = _inventory(tmp_path, GOOD)
    doc = yaml.safe_load(inventory.read_text())
    doc["all"]["children"]["wg_leaves"] = {
        "hosts": {
            "phone": {"wg_ip": "10.1.1.2"},
            "tablet": {"wg_ip": "10.1.1.60", "wg_leaf_home": "alpha"},
        }
    }
    inventory.write_text(yaml.safe_dump(doc))
    rc, doc = _run(ansible_env, inventory, "--limit", "alpha")
    assert rc != 0
    message = _failure(doc)
    assert "host phone: wg_ip 10.1.1.2 is also used by host beta" in message, message
    assert "host tablet: wg_leaf_home alpha is not a static node" in message, message
    assert not (tmp_path / "mesh-leaves").exists()
