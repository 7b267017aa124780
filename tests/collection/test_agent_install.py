"""The agent role's preflight and install tasks, for real, on podman containers of the lab image.

One run of steps on four containers (`wgnm-inst-*`, removed afterwards even on failure):
  a  fresh: --check changes nothing (node or controller), install, a second run changes
     nothing, --check on the installed host changes nothing, then an upgrade (new version
     with a new dependency) is installed;
  b  a foreign interface and a foreign UDP listener on the agent's port: preflight stops the
     play with one message naming both, and nothing is written;
  c  the venv's interpreter vanished (dangling bin/python3, as after an OS upgrade);
  d  the venv's Python changed (its site-packages are for another version);
     both are made again.
The containers have no network (podman --network none): the node installs from the wheels
the controller built and downloaded, as it does on a host without a package index.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.node_preflight import dynamic_port
from collection_paths import COLLECTION_ROOT, ansible_bin

pytestmark = [pytest.mark.collection, pytest.mark.lab]

LAB_IMAGE = os.environ.get("WGNM_LAB_IMAGE", "localhost/wgnm-lab-debian:bookworm")
CONTAINERS_CONF = COLLECTION_ROOT / "lab" / "containers.conf"
PREFIX = "wgnm-inst-"
LABEL = "wgnm.inst"
VENV = "/opt/wg_netmanager/venv"

PLAYBOOK = """
- name: Check and install the agent
  hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Run the agent role's preflight
      ansible.builtin.include_role: {name: wg_netmanager.mesh.agent, tasks_from: preflight.yml, public: true}
    - name: Run the agent role's install tasks
      ansible.builtin.include_role: {name: wg_netmanager.mesh.agent, tasks_from: install.yml}
"""


def _lab_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("podman") is None:
        return "needs podman"
    if podman("image", "exists", LAB_IMAGE, check=False).returncode != 0:
        return f"lab image {LAB_IMAGE} missing (run lab/setup-image)"
    return None


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    proc = subprocess.run(
        ["podman", "--runtime", "runc", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {proc.stderr}")
    return proc


def sh(container: str, script: str, check: bool = True) -> str:
    return podman("exec", container, "sh", "-c", script, check=check).stdout


def remove_containers(run_id: str | None = None) -> None:
    """Remove this run's containers, or (run_id None) those of runs whose pytest is gone."""
    listed = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "json", check=False).stdout
    ids = []
    for container in json.loads(listed or "[]"):
        run, _, pid = container.get("Labels", {}).get(LABEL, "").partition(":")
        if run == run_id or (run_id is None and not (pid.isdigit() and Path(f"/proc/{pid}").exists())):
            ids.append(container["Id"])
    if ids:
        podman("rm", "-f", "-t", "0", *ids, check=False)


@pytest.fixture
def containers() -> Iterator[dict[str, str]]:
    reason = _lab_ready()
    if reason:
        pytest.skip(reason)
    remove_containers()  # leftovers of an interrupted run; a concurrent run keeps its own
    run_id = uuid.uuid4().hex[:6]
    names = {host: f"{PREFIX}{run_id}-{host}" for host in ("a", "b", "c", "d")}
    label = f"{LABEL}={run_id}:{os.getpid()}"
    try:
        for name in names.values():
            podman(
                "run", "-d", "--init", "--pull", "never", "--name", name, "--label", label,
                "--network", "none", "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun", LAB_IMAGE,
            )  # fmt: skip
        yield names
    finally:
        remove_containers(run_id)


class Controller:
    """ansible-playbook against the containers, with the agent's sources in a copy we can change."""

    def __init__(self, tmp: Path, names: dict[str, str], env: dict[str, str]) -> None:
        self.tmp, self.names = tmp, names
        self.source = tmp / "agent"
        shutil.copytree(
            COLLECTION_ROOT / "agent",
            self.source,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*"),
        )
        self.cache = tmp / "cache"
        self.env = {k: v for k, v in env.items() if k != "ANSIBLE_PYTHON_INTERPRETER"}
        (tmp / "install.yml").write_text(PLAYBOOK)

    def play(self, *hosts: str, check: bool = False) -> dict[str, Any]:
        inventory = {
            f"inst-{h}": {
                "ansible_connection": "containers.podman.podman",
                "ansible_host": self.names[h],
                "ansible_python_interpreter": "/usr/bin/python3",
                "wg_ip": "10.1.1.9",
                "wg_subnet": "10.1.1.0/24",
                "wg_shared_key_file": str(self.tmp / "unused.key"),
                "wg_service_manager": "none",
            }
            for h in hosts
        }
        (self.tmp / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": inventory}}))
        extra = {
            "wg_agent_source_dir": str(self.source),
            "wg_agent_controller_cache_dir": str(self.cache),
            # No agent starts: these tests have no net.yaml; the handlers still run.
            "wg_agent_ssd_start": ["true"],
            "wg_agent_ssd_stop": ["true"],
            "wg_agent_restart_timeout": 0,  # and none is waited for
        }
        argv = [
            ansible_bin("ansible-playbook"),
            "-i",
            str(self.tmp / "hosts.yml"),
            str(self.tmp / "install.yml"),
        ]
        argv += ["-e", json.dumps(extra)] + (["--check"] if check else [])
        started = time.monotonic()
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=400, check=False)
        print(f"{'check ' if check else ''}run on {', '.join(hosts)}: {time.monotonic() - started:.1f} s")
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON output:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}") from None
        failed: dict[str, str] = {}
        tasks: dict[str, dict[str, Any]] = {}
        for play in doc["plays"]:
            for task in play["tasks"]:
                for host, result in task["hosts"].items():
                    # Role tasks are named "ROLE : NAME".
                    tasks.setdefault(task["task"]["name"].rpartition(" : ")[2], {})[host] = result
                    if result.get("failed") and not result.get("skipped"):
                        failed[host] = f"{task['task']['name']}: {result.get('msg', '')}"
        return {"stats": doc["stats"], "failed": failed, "tasks": tasks}

    def cache_files(self) -> list[str]:
        if not self.cache.exists():
            return []
        return sorted(f"{p.relative_to(self.cache)} {p.stat().st_mtime_ns}" for p in self.cache.rglob("*"))


def snapshot(container: str) -> str:
    """Every file under /opt with size, mtime and link target: what a check run must not touch."""
    return sh(container, "find /opt -printf '%p %s %T@ %l\\n' | sort")


def pip_list(container: str) -> dict[str, str]:
    out = sh(container, f"{VENV}/bin/python -m pip list --format=json --disable-pip-version-check")
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def wait_for(what: str, condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.timeout(900)
def test_install_upgrade_rebuild_and_check_mode(
    containers: dict[str, str], tmp_path: Path, ansible_env: dict[str, str]
) -> None:
    ctl = Controller(tmp_path, containers, ansible_env)
    a, b, c, d = (containers[h] for h in "abcd")

    # b: somebody else's wg0, and a program on the port the agent derives for inst-b.
    port_b = dynamic_port("inst-b")
    sh(b, "ip tuntap add dev wg0 mode tun")
    listener = (
        f"import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', {port_b}));"
    )
    listener += " open('/tmp/bound', 'w').close(); time.sleep(3600)"
    podman("exec", "-d", b, "python3", "-c", listener)
    wait_for(
        "the listener on b", lambda: sh(b, "test -e /tmp/bound && echo yes", check=False).strip() == "yes"
    )

    def assert_b_refused(run: dict[str, Any]) -> None:
        message = run["failed"].get("inst-b", "")
        assert "Assert nothing else holds the agent's interface and UDP ports: inst-b: " in message, run[
            "failed"
        ]
        assert "interface wg0 already exists and was not created by wg_netmanager" in message
        assert re.search(
            rf"UDP port {port_b} \(wg_port\) is in use by PID \d+ \(python3 -c import socket", message
        )
        assert sh(b, "test -e /opt/wg_netmanager && echo written || echo clean").strip() == "clean"

    # 1. --check on fresh hosts: no failure on a, nothing written on a or on the controller.
    fresh = snapshot(a)
    run = ctl.play("a", "b", check=True)
    assert "inst-a" not in run["failed"], run["failed"]
    assert snapshot(a) == fresh and "/opt/wg_netmanager" not in fresh
    assert ctl.cache_files() == []
    assert_b_refused(run)

    # 2. Install.
    run = ctl.play("a", "b", "c", "d")
    assert sorted(run["failed"]) == ["inst-b"], run["failed"]
    assert_b_refused(run)
    first = pip_list(a)
    assert re.fullmatch(r"0\.1\.0\+g[0-9a-f]{12}", first["wg_netmanager"]), first
    assert {"pyyaml", "cryptography", "pyroute2", "packaging"} <= set(first)
    assert sh(a, f"{VENV}/bin/wg_netmanager --version").startswith("wg_netmanager 0.1.0")

    # 3. A second run changes nothing.
    run = ctl.play("a", "c", "d")
    assert run["failed"] == {}
    assert {h: run["stats"][h]["changed"] for h in run["stats"]} == {"inst-a": 0, "inst-c": 0, "inst-d": 0}

    # 4. c's interpreter vanishes, d's changes (site-packages for another Python); --check
    # does not fail and changes nothing anywhere.
    sh(c, f"ln -sfn /usr/bin/python3.8 {VENV}/bin/python3")
    sh(d, f"mv {VENV}/lib/python3.11 {VENV}/lib/python3.9")
    before = {h: snapshot(h) for h in (a, c, d)}
    cache_before = ctl.cache_files()
    run = ctl.play("a", "c", "d", check=True)
    assert run["failed"] == {}
    assert run["stats"]["inst-a"]["changed"] == 0
    assert {h: snapshot(h) for h in (a, c, d)} == before
    assert ctl.cache_files() == cache_before
    removal = run["tasks"]["Remove a virtualenv whose Python changed or is gone"]
    assert (
        removal["inst-c"]["changed"] and removal["inst-d"]["changed"] and not removal["inst-a"].get("changed")
    )

    # 5. A new release that needs a new dependency; c and d get new virtualenvs.
    pyproject = ctl.source / "pyproject.toml"
    text = pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"')
    pyproject.write_text(text.replace('"pyroute2>=0.7",', '"pyroute2>=0.7",\n  "six>=1.16",'))
    run = ctl.play("a", "c", "d")
    assert run["failed"] == {}
    for host in (a, c, d):
        installed = pip_list(host)
        assert installed["wg_netmanager"].startswith("0.2.0+g") and "six" in installed, (host, installed)
        assert sh(host, f"{VENV}/bin/python -c 'import wg_netmanager.cli, six; print(1)'").strip() == "1"
        assert sh(host, "ls /opt/wg_netmanager/wheels | grep '^wg_netmanager-'").split() == [
            f"wg_netmanager-{installed['wg_netmanager']}-py3-none-any.whl"
        ]
    removal = run["tasks"]["Remove a virtualenv whose Python changed or is gone"]
    assert (
        removal["inst-c"]["changed"] and removal["inst-d"]["changed"] and not removal["inst-a"].get("changed")
    )
    assert sh(c, f"readlink {VENV}/bin/python3").strip() != "/usr/bin/python3.8"
