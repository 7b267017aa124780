"""Network CA mode and key pinning, for real on the controller.

Three fake nodes (localhost, each with its own interface name, so each has its own private
key under one state directory; the controller venv's agent stands in for theirs) run the
agent role's identity tasks and the tasks that write its files (files.yml), into a directory
per node instead of /etc/wg_netmanager. The CA, the issued certificates, the revocation list
and the node keys are the real files the playbook keeps on the controller, checked with the
agent's `cert show`. Needs root (the role's files are owned by root).

One sequence of runs, each test looking at one step: a first run, a second one (changes
nothing), a check run after a certificate came close to expiry and a node lost its key
(writes nothing), the real run (renews one, re-signs and revokes the other), a --limit run
after a host left the inventory (revoked), a full run (renders what the --limit run did),
and a switch back to shared-key mode.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import collection_paths
import pytest
import yaml
from collection_paths import VENV_BIN, ansible_bin

pytestmark = pytest.mark.collection

AGENT = VENV_BIN / "wg_netmanager"
HOSTS = {
    "alpha": {"wg_ip": "10.1.1.1", "wg_interface": "wga"},
    "beta": {"wg_ip": "10.1.1.2", "wg_interface": "wgb", "wg_static_endpoint": "198.51.100.2:50000"},
    "charlie": {"wg_ip": "10.1.1.3", "wg_interface": "wgc", "wg_cert_subnets": ["192.168.3.0/24"]},
}
STATIC_PEERS = {"beta": {"endPoint": "198.51.100.2:50000", "adminPort": 50001, "wgIp": "10.1.1.2"}}

PLAYBOOK = """
- name: Read keys, sign certificates, render the configuration
  hosts: wg_mesh
  gather_facts: false
  tasks:
    - name: Run the agent role's identity tasks
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: identity.yml
        public: true
    - name: Write the agent's files as the role does
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: files.yml
"""


class Mesh:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ctl, self.state, self.out = tmp / "ctl", tmp / "state", tmp / "out"
        self.out.mkdir()
        self.ca = self.ctl / "mesh-ca"
        self.keys = self.ctl / "mesh-keys"
        (tmp / "play.yml").write_text(PLAYBOOK)
        self.env = dict(os.environ)
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collection_paths.tree),
            ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
            ANSIBLE_HOME=str(tmp / "ansible-home"),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        )

    def run(self, *args: str, hosts: tuple[str, ...] = tuple(HOSTS), ca: bool = True) -> dict[str, Any]:
        """One playbook run; returns {'stats': host -> counts, 'tasks': name -> host -> result}."""
        inventory = self.tmp / "hosts.yml"
        group = {
            "vars": {
                "ansible_connection": "local",
                "wg_subnet": "10.1.1.0/24",
                "wg_shared_key_file": str(self.ctl / "mesh.key"),
                "wg_ca_enabled": ca,
            },
            "hosts": {h: HOSTS[h] for h in hosts},
        }
        inventory.write_text(yaml.safe_dump({"all": {"children": {"wg_mesh": group}}}))
        extra = {
            "wg_agent_venv": str(VENV_BIN.parent),
            "wg_agent_state_dir": str(self.state),
            "wg_agent_service_manager": "test",  # no handler restarts anything
            "wg_static_peers": STATIC_PEERS,
            "wg_agent_config_dir": f"{self.out}/{{{{ inventory_hostname }}}}",
        }
        argv = [ansible_bin("ansible-playbook"), "-i", str(inventory), str(self.tmp / "play.yml")]
        proc = subprocess.run(
            [*argv, "-e", json.dumps(extra), *args],
            env=self.env,
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
        for task in doc["plays"][0]["tasks"]:
            name = task["task"]["name"].split(" : ", 1)[-1]  # without "ROLE : "
            tasks.setdefault(name, {}).update(task["hosts"])
        failed = {h: s for h, s in doc["stats"].items() if s["failures"] or s["unreachable"]}
        assert not failed, json.dumps(tasks, indent=1)[-6000:]
        return {"stats": doc["stats"], "tasks": tasks}

    def rendered(self) -> dict[str, dict[str, str]]:
        """Host -> {'net': net.yaml, 'peer': peer.yaml, 'cert': node.crt (or None)}, as the
        last run left them."""
        files = {}
        for node in sorted(self.out.iterdir()):
            cert = node / "node.crt"
            files[node.name] = {
                "net": (node / "net.yaml").read_text(),
                "peer": (node / "peer.yaml").read_text(),
                "cert": cert.read_text() if cert.exists() else None,
            }
        return files

    def node_key(self, host: str) -> str:
        argv = [str(AGENT), "pubkey", "-i", HOSTS[host]["wg_interface"], "--state-dir", str(self.state)]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    def show(self, path: Path) -> dict[str, Any]:
        argv = [str(AGENT), "cert", "show", "--json", "--ca", str(self.ca / "ca.pub"), str(path)]
        return json.loads(subprocess.run(argv, capture_output=True, text=True, check=False).stdout)

    def cert(self, host: str) -> dict[str, Any]:
        return self.show(self.ca / "issued" / f"{host}.crt")

    def sign(self, host: str, days: int) -> None:
        """Replace the host's certificate on the controller with one valid for `days`."""
        c = self.cert(host)
        argv = [str(AGENT), "cert", "sign", "--ca-key", str(self.ca / "ca.key"), "--name", c["name"]]
        argv += ["--wg-ip", c["wgIp"], "--public-key", c["publicKey"], "--days", str(days), "--force"]
        for subnet in c["subnets"]:
            argv += ["--subnet", subnet]
        subprocess.run(
            [*argv, "-o", str(self.ca / "issued" / f"{host}.crt")], check=True, capture_output=True
        )

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.tmp)): p.read_bytes()
            for root in (self.ctl, self.state, self.out)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }


def changed(run: dict[str, Any]) -> dict[str, int]:
    return {h: s["changed"] for h, s in run["stats"].items()}


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not AGENT.exists():
        pytest.skip("the agent is not installed in .venv (run scripts/setup)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the role writes the agent's files owned by root")
    mesh = Mesh(tmp_path_factory.mktemp("ca-mode"))
    s: dict[str, Any] = {"mesh": mesh}
    s["first"] = mesh.run()
    s["first_files"] = mesh.rendered()
    s["first_issued"] = {h: (mesh.ca / "issued" / f"{h}.crt").read_text() for h in HOSTS}
    s["first_certs"] = {h: mesh.cert(h) for h in HOSTS}
    s["first_keys"] = {h: mesh.node_key(h) for h in HOSTS}
    s["second"] = mesh.run()

    mesh.sign("alpha", days=10)  # now within wg_cert_renew_days (30)
    s["short_alpha"] = mesh.cert("alpha")
    shutil.rmtree(mesh.state / "wgb")  # beta lost its key: it gets a new one
    before = mesh.snapshot()
    s["check"] = mesh.run("--check", "--diff")
    s["check_wrote"] = sorted(k for k, v in mesh.snapshot().items() if before.get(k) != v)
    s["check_wrote"] += sorted(set(before) - set(mesh.snapshot()))
    s["renew"] = mesh.run()
    s["renew_files"] = mesh.rendered()
    s["renew_certs"] = {h: mesh.cert(h) for h in HOSTS}
    s["beta_key"] = mesh.node_key("beta")

    s["charlie_cert"] = mesh.cert("charlie")
    s["limit"] = mesh.run("--limit", "alpha", hosts=("alpha", "beta"))
    s["limit_files"] = mesh.rendered()
    s["limit_keys"] = sorted(p.name for p in mesh.keys.iterdir())
    s["full"] = mesh.run(hosts=("alpha", "beta"))
    s["full_files"] = mesh.rendered()
    s["shared"] = mesh.run(ca=False)
    s["shared_files"] = mesh.rendered()
    return s


def net(files: dict[str, dict[str, str]], host: str) -> dict[str, Any]:
    return yaml.safe_load(files[host]["net"])


def peer(files: dict[str, dict[str, str]], host: str) -> dict[str, Any]:
    return yaml.safe_load(files[host]["peer"])


def test_ca_mode_config_names_the_ca_and_every_node_its_certificate(steps: dict[str, Any]) -> None:
    mesh, files = steps["mesh"], steps["first_files"]
    assert len({files[h]["net"] for h in HOSTS}) == 1, "net.yaml differs between nodes"
    network = net(files, "alpha")["network"]
    assert network["caPublicKey"] == (mesh.ca / "ca.pub").read_text().strip()
    assert network["revokedCerts"] == []
    assert (mesh.ca / "ca.key").stat().st_mode & 0o777 == 0o600
    for host in HOSTS:
        assert peer(files, host)["cert"] == f"{mesh.out}/{host}/node.crt"  # /etc/wg_netmanager/ on a node
        assert files[host]["cert"] == steps["first_issued"][host]


def test_every_certificate_binds_what_the_inventory_says(steps: dict[str, Any]) -> None:
    for host, cert in steps["first_certs"].items():
        assert cert["verified"], cert
        assert (cert["name"], cert["wgIp"]) == (host, HOSTS[host]["wg_ip"])
        assert cert["publicKey"] == steps["first_keys"][host]
        assert cert["subnets"] == HOSTS[host].get("wg_cert_subnets", [])
        assert 364 * 86400 < cert["notAfter"] - cert["notBefore"] < 366 * 86400


def test_static_nodes_keys_are_pinned_from_the_controllers_copy(steps: dict[str, Any]) -> None:
    peers = net(steps["first_files"], "alpha")["peers"]
    assert peers == {"beta": {**STATIC_PEERS["beta"], "publicKey": steps["first_keys"]["beta"]}}
    assert (steps["mesh"].keys / "alpha.pub").read_text() == steps["first_keys"]["alpha"] + "\n"


def test_second_run_changes_nothing(steps: dict[str, Any]) -> None:
    assert changed(steps["second"]) == {h: 0 for h in HOSTS}


def test_check_mode_reports_renewal_and_new_key_and_writes_nothing(steps: dict[str, Any]) -> None:
    assert steps["check_wrote"] == []
    first = steps["first_certs"]
    signing = steps["check"]["tasks"]["Sign or renew the node's certificate on the controller"]
    assert signing["alpha"]["changed"]
    assert signing["alpha"]["reasons"] == ["expires in 9 days (renewed within 30)"]
    assert signing["alpha"]["revoked"] is None
    assert "serial: (new)" in signing["alpha"]["diff"]["after"]
    assert signing["beta"]["changed"] and signing["beta"]["revoked"]["serial"] == first["beta"]["serial"]
    assert signing["beta"]["reasons"] == [f"public key {first['beta']['publicKey']} -> (made on the node)"]
    assert not signing["charlie"]["changed"]
    (revocations,) = steps["check"]["tasks"]["Revoke the certificates of hosts no longer in wg_mesh"].values()
    assert revocations["changed"] and revocations["serials"] == [first["beta"]["serial"]]
    # alpha: its certificate, the revocation list (run once, on alpha), net.yaml; beta: its
    # certificate and net.yaml (no key to keep yet); charlie: net.yaml (beta's old serial).
    assert changed(steps["check"]) == {"alpha": 3, "beta": 2, "charlie": 1}


def test_renewal_keeps_the_identity_and_revokes_nothing(steps: dict[str, Any]) -> None:
    old, new = steps["short_alpha"], steps["renew_certs"]["alpha"]
    assert new["verified"] and new["serial"] != old["serial"]
    assert (new["name"], new["wgIp"], new["publicKey"]) == (old["name"], old["wgIp"], old["publicKey"])
    assert new["notAfter"] - new["notBefore"] > 364 * 86400
    assert old["serial"] not in net(steps["renew_files"], "alpha")["network"]["revokedCerts"]


def test_a_new_key_is_certified_and_pinned_and_the_old_certificate_revoked(steps: dict[str, Any]) -> None:
    mesh, key, files = steps["mesh"], steps["beta_key"], steps["renew_files"]
    old = steps["first_certs"]["beta"]
    assert key != old["publicKey"]
    assert steps["renew_certs"]["beta"]["publicKey"] == key
    assert net(files, "charlie")["network"]["revokedCerts"] == [old["serial"]]
    assert net(files, "charlie")["peers"]["beta"]["publicKey"] == key
    assert len({files[h]["net"] for h in HOSTS}) == 1
    revoked = json.loads((mesh.ca / "revoked.json").read_text())["revoked"]
    assert (revoked[0]["serial"], revoked[0]["host"]) == (old["serial"], "beta")
    assert files["beta"]["cert"] == (mesh.ca / "issued/beta.crt").read_text()
    assert revoked[0]["reason"].startswith("superseded: public key ")
    assert changed(steps["renew"])["charlie"] == 1  # only its net.yaml: the new pin and revocation


def test_a_host_taken_out_is_revoked_even_under_limit(steps: dict[str, Any]) -> None:
    mesh, charlie = steps["mesh"], steps["charlie_cert"]
    text = steps["limit_files"]["alpha"]["net"]
    assert charlie["serial"] in yaml.safe_load(text)["network"]["revokedCerts"]
    assert not (mesh.ca / "issued/charlie.crt").exists()
    assert (mesh.ca / f"revoked/charlie-{charlie['serial']}.crt").exists()
    # Serials are quoted hex text in the file, never numbers.
    assert re.search(r'revokedCerts: \["[0-9a-f]{16}", "[0-9a-f]{16}"\]\n', text), text
    assert set(steps["limit"]["stats"]) == {"alpha"}
    assert steps["limit_keys"] == ["alpha.pub", "beta.pub"]  # charlie's key forgotten


def test_a_limit_run_renders_what_a_full_run_renders(steps: dict[str, Any]) -> None:
    render = steps["full"]["tasks"]["Write net.yaml"]
    assert not render["alpha"]["changed"], render["alpha"]
    assert steps["full_files"]["beta"]["net"] == steps["limit_files"]["alpha"]["net"]
    assert changed(steps["full"]) == {"alpha": 0, "beta": 1}  # its net.yaml: charlie revoked


def test_shared_key_mode_keeps_the_pins_and_drops_the_ca(steps: dict[str, Any]) -> None:
    files = steps["shared_files"]
    network, peers = net(files, "charlie")["network"], net(files, "charlie")["peers"]
    assert set(network) == {"sharedKeyFile", "subnet"}
    assert peers["beta"]["publicKey"] == steps["beta_key"]
    assert "cert" not in peer(files, "alpha")
    assert files["alpha"]["cert"] is None  # removed from the node
    ran = {
        name
        for name, hosts in steps["shared"]["tasks"].items()
        if any(not r.get("skipped") for r in hosts.values())
    }
    assert "Sign or renew the node's certificate on the controller" not in ran


def test_shared_key_mode_from_the_start_pins_keys_and_makes_no_ca(tmp_path: Path) -> None:
    if not AGENT.exists() or os.geteuid() != 0:
        pytest.skip("needs root and the agent in .venv")
    mesh = Mesh(tmp_path)
    mesh.run(ca=False)
    files = mesh.rendered()
    assert len({files[h]["net"] for h in HOSTS}) == 1
    network, peers = net(files, "alpha")["network"], net(files, "alpha")["peers"]
    assert set(network) == {"sharedKeyFile", "subnet"}
    assert peers["beta"]["publicKey"] == mesh.node_key("beta")
    assert not mesh.ca.exists()
    assert sorted(p.name for p in mesh.keys.iterdir()) == ["alpha.pub", "beta.pub", "charlie.pub"]


def test_check_mode_before_the_first_run_makes_no_ca_key_or_certificate(tmp_path: Path) -> None:
    if not AGENT.exists() or os.geteuid() != 0:
        pytest.skip("needs root and the agent in .venv")
    mesh = Mesh(tmp_path)
    run = mesh.run("--check", "--diff")
    assert not mesh.ctl.exists()  # no shared key, no CA, no node keys
    assert mesh.snapshot() == {}  # and nothing on the nodes
    (init,) = run["tasks"]["Create the network CA on the controller (once; a CA is never replaced)"].values()
    assert init["changed"]
    written = run["tasks"]["Write net.yaml"]
    assert all(written[h]["changed"] for h in HOSTS)
    after = yaml.safe_load(written["alpha"]["diff"][0]["after"])
    assert after["network"]["caPublicKey"] == "(check mode: the key of the CA a real run makes)"
    assert after["network"]["sharedKeyFile"] == "shared.key"
    signing = run["tasks"]["Sign or renew the node's certificate on the controller"]
    assert all(r.get("skipped") for r in signing.values())
