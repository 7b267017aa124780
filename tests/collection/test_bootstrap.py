"""Python 3 for nodes without it, installed with `raw` before site.yml gathers facts.

Run for real on this machine: the raw probe and the role's decisions, on local hosts whose
interpreter is set to a path that does not exist (so the probe finds no Python) and whose
OS files are written here (OpenWrt's /etc/openwrt_release, an os-release with ID_LIKE, one
the role knows nothing of). The install command is replaced by one that writes a file: no
package manager runs. opkg, apk and the others are not run here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from collection_paths import COLLECTION_ROOT
from os_hosts import run_playbook

pytestmark = pytest.mark.collection

COMMANDS = yaml.safe_load((COLLECTION_ROOT / "roles/agent/vars/main.yml").read_text())[
    "wg_agent_python_bootstrap"
]

PLAYBOOK = """
- name: Install Python 3 where it is missing
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the agent role's bootstrap
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: bootstrap.yml
      vars:
        wg_agent_os_release_files: "{{ test_release_files }}"
        wg_agent_python_bootstrap: "{{ test_commands }}"
    - name: After the bootstrap
      ansible.builtin.debug:
        msg: reached
"""

RELEASES = {
    "openwrt": {"openwrt_release": "DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='23.05.5'\n"},
    "raspbian": {"os-release": 'PRETTY_NAME="Raspbian"\nID=raspbian\nID_LIKE=debian\n'},
    "plan9": {"os-release": "ID=plan9\n"},
}


def _host(
    tmp: Path, release: str | None, python: str = "/nonexistent/bin/python3", **commands: str
) -> dict[str, Any]:
    files = []
    for name, text in RELEASES.get(release or "", {}).items():
        path = tmp / (release or "") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(str(path))
    return {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_python_interpreter": python,
        "test_release_files": files or ["/etc/os-release"],
        "test_commands": commands or COMMANDS,
    }


def test_site_yml_installs_python_after_the_mesh_checks_and_before_facts() -> None:
    play = yaml.safe_load((COLLECTION_ROOT / "playbooks/site.yml").read_text())[0]
    assert play["gather_facts"] is False
    names = [task["name"] for task in play["pre_tasks"]]
    assert names == [
        "Check the whole mesh on the controller",
        "Install Python 3 where it is missing",
        "Gather facts",
    ]
    assert play["pre_tasks"][1]["ansible.builtin.import_role"]["tasks_from"] == "bootstrap.yml"
    assert play["pre_tasks"][1]["tags"] == ["always"]


def test_python_is_installed_only_where_it_is_missing(tmp_path: Path) -> None:
    marker = tmp_path / "installed"
    hosts = {
        "has-python": _host(tmp_path, "openwrt", python=sys.executable, openwrt=f"echo once >> {marker}"),
        "openwrt": _host(tmp_path, "openwrt", openwrt=f"echo once >> {marker}"),
        "plan9": _host(tmp_path, "plan9"),
    }
    tasks = run_playbook(tmp_path / "run", hosts, PLAYBOOK, {})
    install = tasks["Install Python 3 (raw)"]
    assert install["openwrt"]["changed"] and not install["openwrt"].get("failed")
    assert install["has-python"].get("skipped")
    assert marker.read_text() == "once\n"
    assert not [name for name, by_host in tasks.items() if by_host.get("has-python", {}).get("changed")]
    assert set(tasks["After the bootstrap"]) == {"has-python", "openwrt"}
    message = tasks["Assert Python 3 can be installed on the node"]["plan9"]["msg"]
    assert "plan9: no Python 3 (/nonexistent/bin/python3)" in message, message
    assert "alpine, debian, fedora, freebsd, openwrt" in message and "says plan9" in message, message


def test_a_check_run_installs_nothing_and_says_what_it_would(tmp_path: Path) -> None:
    hosts = {
        "has-python": _host(tmp_path, "openwrt", python=sys.executable),
        "openwrt": _host(tmp_path, "openwrt"),
        "raspbian": _host(tmp_path, "raspbian"),
    }
    tasks = run_playbook(tmp_path / "run", hosts, PLAYBOOK, {}, "--check")
    said = tasks["Say that a real run would install Python 3 (check mode)"]
    assert (
        said["openwrt"]["changed"] and "opkg install python3-light python3-logging" in said["openwrt"]["msg"]
    )
    # Raspbian is not in the table; its ID_LIKE, debian, is.
    assert "apt-get install -y -q --no-install-recommends python3" in said["raspbian"]["msg"]
    assert said["has-python"].get("skipped")
    # Without Python nothing else could be checked: the check of those nodes ends there.
    assert set(tasks["After the bootstrap"]) == {"has-python"}
    assert not [h for h, r in tasks.get("Install Python 3 (raw)", {}).items() if not r.get("skipped")]
