"""Leaves (group wg_leaves: WireGuard peers without the agent), for real on the controller.

Three fake nodes (localhost, each with its own interface, so each has its own WireGuard key;
the controller venv's agent stands in for theirs) run the mesh's checks, the agent role's
identity tasks and the tasks that write its files, into a directory per node; then the
leaves' play (playbooks/leaves.yml) writes each leaf's wg-quick configuration and QR code.
The leaves point at TEST-NET-1 addresses over ssh: a run that contacted one would report it
unreachable. Needs root (the role's files are owned by root).

One sequence of runs, each test looking at one step: a check run before anything exists
(writes nothing), a first run, a second one (changes nothing), a check run (changes
nothing), and a --limit run naming one leaf only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import collection_paths
import pytest
import yaml
from collection_paths import VENV_BIN, ansible_bin
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wg_netmanager.core.netconfig import parse_net

pytestmark = pytest.mark.collection

AGENT = VENV_BIN / "wg_netmanager"
NODES = {
    "alpha": {"wg_ip": "10.1.1.1", "wg_interface": "wla"},
    "beta": {"wg_ip": "10.1.1.2", "wg_interface": "wlb", "wg_static_endpoint": "198.51.100.2:50000"},
    "charlie": {"wg_ip": "10.1.1.3", "wg_interface": "wlc", "wg_static_endpoint": "gw.example.org:51820"},
}
LEAVES = {
    "phone": {"wg_ip": "10.1.1.50", "wg_leaf_dns": ["10.1.1.2", "home.arpa"]},
    "tablet": {
        "wg_name": "tab",
        "wg_ip": "10.1.1.51",
        "wg_leaf_home": "charlie",
        "wg_leaf_allowed_ips": ["0.0.0.0/0"],
        "wg_leaf_keepalive": 0,
    },
}

PLAYBOOK = """
- name: Check the mesh, read keys, render the configuration
  hosts: wg_mesh
  gather_facts: false
  tasks:
    - name: Check the whole mesh on the controller
      ansible.builtin.import_role:
        name: wg_netmanager.mesh.agent
        tasks_from: mesh.yml
    - name: Run the agent role's identity tasks
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: identity.yml
        public: true
    - name: Write the agent's files as the role does
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: files.yml

- name: The leaves
  ansible.builtin.import_playbook: wg_netmanager.mesh.leaves
"""


class Mesh:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ctl, self.state, self.out = tmp / "ctl", tmp / "state", tmp / "out"
        self.out.mkdir()
        self.leaves = self.ctl / "mesh-leaves"
        self.keys = self.ctl / "mesh-keys"
        (tmp / "play.yml").write_text(PLAYBOOK)
        self.env = collection_paths.ansible_environment(tmp)
        group = {
            "vars": {
                "ansible_connection": "local",
                "wg_subnet": "10.1.1.0/24",
                "wg_shared_key_file": str(self.ctl / "mesh.key"),
            },
            "hosts": NODES,
        }
        leaves = {
            name: {
                "ansible_host": f"192.0.2.{index}",
                "ansible_connection": "ssh",
                "ansible_ssh_common_args": "-o ConnectTimeout=2 -o BatchMode=yes",
                **hostvars,
            }
            for index, (name, hostvars) in enumerate(LEAVES.items(), start=1)
        }
        self.inventory = tmp / "hosts.yml"
        doc = {"all": {"children": {"wg_mesh": group, "wg_leaves": {"hosts": leaves}}}}
        self.inventory.write_text(yaml.safe_dump(doc))
        self.outputs: list[str] = []

    def run(self, *args: str) -> dict[str, Any]:
        """One playbook run; returns {'stats': host -> counts, 'tasks': name -> host -> result}."""
        extra = {
            "wg_agent_venv": str(VENV_BIN.parent),
            "wg_agent_state_dir": str(self.state),
            "wg_agent_service_manager": "test",  # no handler restarts anything
            "wg_agent_config_dir": f"{self.out}/{{{{ inventory_hostname }}}}",
        }
        argv = [ansible_bin("ansible-playbook"), "-i", str(self.inventory), str(self.tmp / "play.yml")]
        proc = subprocess.run(
            [*argv, "-e", json.dumps(extra), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.outputs.append(proc.stdout + proc.stderr)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON output:\n{proc.stdout}\n{proc.stderr}") from None
        tasks: dict[str, dict[str, Any]] = {}
        for play in doc["plays"]:
            for task in play["tasks"]:
                name = task["task"]["name"].split(" : ", 1)[-1]  # without "ROLE : "
                tasks.setdefault(name, {}).update(task["hosts"])
        failed = {h: s for h, s in doc["stats"].items() if s["failures"] or s["unreachable"]}
        assert not failed, json.dumps(tasks, indent=1)[-6000:]
        return {"stats": doc["stats"], "tasks": tasks}

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.tmp)): p.read_bytes()
            for root in (self.ctl, self.state, self.out)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    def net(self, host: str) -> dict[str, Any]:
        return yaml.safe_load((self.out / host / "net.yaml").read_text())


def changed(run: dict[str, Any]) -> dict[str, int]:
    return {h: s["changed"] for h, s in run["stats"].items()}


def public_key(private: str) -> str:
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if os.geteuid() != 0:
        pytest.skip("the agent role writes its files as root")
    mesh = Mesh(tmp_path_factory.mktemp("leaves"))
    out: dict[str, Any] = {"mesh": mesh}
    out["check_first"] = mesh.run("--check")
    out["after_check_first"] = mesh.snapshot()
    out["leaves_dir_after_check_first"] = mesh.leaves.exists()
    out["first"] = mesh.run()
    out["after_first"] = mesh.snapshot()
    out["second"] = mesh.run()
    out["after_second"] = mesh.snapshot()
    out["check"] = mesh.run("--check", "--diff")
    out["after_check"] = mesh.snapshot()
    (mesh.leaves / "phone.conf").unlink()
    (mesh.leaves / "phone.png").unlink()
    out["limit"] = mesh.run("--limit", "phone")
    out["after_limit"] = mesh.snapshot()
    return out


def test_check_run_before_the_first_makes_no_key_and_says_it_would(steps: dict[str, Any]) -> None:
    assert not steps["leaves_dir_after_check_first"]
    assert not [name for name in steps["after_check_first"] if "leaves" in name]
    keys = steps["check_first"]["tasks"]["Make each leaf's private key on the controller if it is missing"]
    assert keys["alpha"]["changed"] is True
    # No home key yet in a check run before the first: the leaves say why they have no file.
    said = steps["check_first"]["tasks"]["Say why the leaf has no configuration yet"]
    assert "run playbooks/site.yml for beta first" in said["phone"]["msg"]


def test_net_yaml_lists_the_leaves_the_same_on_every_node(steps: dict[str, Any]) -> None:
    mesh = steps["mesh"]
    phone = public_key((mesh.leaves / "phone.key").read_text().strip())
    tab = public_key((mesh.leaves / "tab.key").read_text().strip())
    want = {
        "phone": {"publicKey": phone, "wgIp": "10.1.1.50", "home": "beta"},
        "tab": {"publicKey": tab, "wgIp": "10.1.1.51", "home": "charlie"},
    }
    for host in NODES:
        assert mesh.net(host)["leaves"] == want, host
    assert list(mesh.net("alpha")["leaves"]["phone"]) == ["publicKey", "wgIp", "home"]
    texts = {(mesh.out / host / "net.yaml").read_text() for host in NODES}
    assert len(texts) == 1
    # The agent takes what the collection renders (the shared key lives in a file beside it).
    doc = mesh.net("alpha")
    doc["network"] = {"sharedKey": base64.b64encode(bytes(32)).decode(), "subnet": doc["network"]["subnet"]}
    parsed = parse_net(doc, "net.yaml")
    assert [(leaf.name, str(leaf.wg_ip), leaf.home) for leaf in parsed.leaves] == [
        ("phone", "10.1.1.50", "beta"),
        ("tab", "10.1.1.51", "charlie"),
    ]


def test_leaf_files_are_private(steps: dict[str, Any]) -> None:
    mesh = steps["mesh"]
    assert stat.S_IMODE(mesh.leaves.stat().st_mode) == 0o700
    files = sorted(p.name for p in mesh.leaves.iterdir())
    assert files == ["phone.conf", "phone.key", "phone.png", "tab.conf", "tab.key", "tab.png"]
    for path in mesh.leaves.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_wg_quick_config_has_the_home_node_as_its_peer(steps: dict[str, Any]) -> None:
    mesh = steps["mesh"]
    private = (mesh.leaves / "phone.key").read_text().strip()
    beta = (mesh.keys / "beta.pub").read_text().strip()
    assert (mesh.leaves / "phone.conf").read_text() == (
        "[Interface]\n"
        f"PrivateKey = {private}\n"
        "Address = 10.1.1.50/24\n"
        "DNS = 10.1.1.2, home.arpa\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {beta}\n"
        "Endpoint = 198.51.100.2:50000\n"
        "AllowedIPs = 10.1.1.0/24\n"
        "PersistentKeepalive = 25\n"
    )
    private = (mesh.leaves / "tab.key").read_text().strip()
    charlie = (mesh.keys / "charlie.pub").read_text().strip()
    assert (mesh.leaves / "tab.conf").read_text() == (
        "[Interface]\n"
        f"PrivateKey = {private}\n"
        "Address = 10.1.1.51/24\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {charlie}\n"
        "Endpoint = gw.example.org:51820\n"
        "AllowedIPs = 0.0.0.0/0\n"
    )


def test_qr_code_is_exactly_the_config(steps: dict[str, Any]) -> None:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.skip("zbarimg is not installed (Debian package zbar-tools, scripts/apt-packages.txt)")
    mesh = steps["mesh"]
    for name in ("phone", "tab"):
        proc = subprocess.run(
            [zbarimg, "--quiet", "--raw", "-Sbinary", str(mesh.leaves / f"{name}.png")],
            capture_output=True,
            check=True,
        )
        assert proc.stdout == (mesh.leaves / f"{name}.conf").read_bytes(), name


def test_second_run_changes_nothing(steps: dict[str, Any]) -> None:
    assert set(changed(steps["second"]).values()) == {0}, changed(steps["second"])
    assert steps["after_second"] == steps["after_first"]


def test_check_run_changes_nothing_and_reports_nothing(steps: dict[str, Any]) -> None:
    assert set(changed(steps["check"]).values()) == {0}, changed(steps["check"])
    assert steps["after_check"] == steps["after_first"]


def test_a_limit_run_naming_a_leaf_checks_the_mesh_and_writes_its_files(steps: dict[str, Any]) -> None:
    run = steps["limit"]
    assert set(run["stats"]) == {"phone"}
    assert "Validate every node of the mesh" in run["tasks"]
    assert steps["after_limit"] == steps["after_first"]


def test_no_private_key_in_any_output(steps: dict[str, Any]) -> None:
    mesh = steps["mesh"]
    secrets = [(mesh.leaves / f"{name}.key").read_text().strip() for name in ("phone", "tab")]
    assert len(mesh.outputs) == 5
    for output in mesh.outputs:
        for secret in secrets:
            assert secret not in output
            # nor its bytes in any other spelling a result could carry
            assert base64.b64decode(secret).hex() not in output


def test_the_leaves_play_runs_on_the_controller_only(steps: dict[str, Any]) -> None:
    for name in ("first", "limit"):
        for task, results in steps[name]["tasks"].items():
            for host in ("phone", "tablet"):
                result = results.get(host)
                if result and not result.get("skipped") and "_ansible_delegated_vars" in result:
                    assert result["_ansible_delegated_vars"]["ansible_host"] == "localhost", (name, task)
