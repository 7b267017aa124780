"""Fake hosts of other systems for the collection tests: localhost with another OS's facts.

`run_playbook` runs one playbook over such an inventory with the JSON callback and returns
the results by task name and host; the tests read the vars the roles chose and the files the
templates render.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import collection_paths
from collection_paths import ansible_bin


def facts(distribution: str, family: str, service_mgr: str, **extra: Any) -> dict[str, Any]:
    return {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_distribution": distribution,
        "ansible_os_family": family,
        "ansible_service_mgr": service_mgr,
        "ansible_architecture": "aarch64",
        "ansible_python": {"version": {"major": 3, "minor": 12}, "executable": "/usr/bin/python3"},
        "wg_ip": "10.1.1.9",
        "wg_subnet": "10.1.1.0/24",
        "wg_shared_key_file": "/nonexistent/mesh.key",
        **extra,
    }


def run_playbook(
    tmp: Path, hosts: dict[str, dict[str, Any]], playbook: str, extra_vars: dict[str, Any], *args: str
) -> dict[str, dict[str, Any]]:
    """task name -> host -> result, over every play; the exit status is for the caller to read
    from the results (a test may expect a host to fail)."""
    tmp.mkdir(parents=True, exist_ok=True)
    inventory = tmp / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    book = tmp / "play.yml"
    book.write_text(playbook)
    env = collection_paths.ansible_environment(tmp)
    proc = subprocess.run(
        [
            ansible_bin("ansible-playbook"),
            "-i",
            str(inventory),
            str(book),
            "-e",
            json.dumps(extra_vars),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON output:\n{proc.stdout}\n{proc.stderr}") from None
    tasks: dict[str, dict[str, Any]] = {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].split(" : ", 1)[-1]  # without "ROLE : "
            tasks.setdefault(name, {}).update(task["hosts"])
    return tasks
