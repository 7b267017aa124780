"""playbooks/rotate.yml on two fake nodes, and site.yml's role in the middle of a rotation.

The nodes are localhost (as in test_ca_mode.py: one interface name each, so one private key
each under one state directory; the controller venv's agent stands in for theirs, for
`pubkey`), with their files in a directory per node. Each runs tests/collection/fake_agent.py,
started by the role itself (service manager `none`: start-stop-daemon and a pidfile), which
reads net.yaml at start and on SIGHUP, serves `rotating`/`onPreviousKey` on its status
socket as the agent does, and logs every start, reload and stop with a digest of the keys it
read. A deployment stands in for site.yml: the agent role's preflight, identity and configure
tasks. A third host, delta, is unreachable. Needs root (the role's files are owned by root)
and start-stop-daemon.

One sequence of runs, each test looking at one step: deploy; a check run of phase 1 (writes
nothing); phase 1 under --limit alpha, whose agent misses the SIGHUP; phase 2 refused (alpha
not rotating, beta outside --limit, delta unreachable); the deployment mid-rotation (gives
beta both keys by a reload, undoes nothing); phase 1 again (no other key; reloads alpha);
phase 2 refused while a node hears the old key; a check run of phase 2; phase 2 (while a
node outside the inventory still speaks the old key); phase 2 again (changes nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import collection_paths
import pytest
import yaml
from collection_paths import COLLECTION_ROOT, VENV_BIN, ansible_bin

pytestmark = pytest.mark.collection

AGENT = VENV_BIN / "wg_netmanager"
FAKE_AGENT = Path(__file__).with_name("fake_agent.py")
HOSTS = {
    "alpha": {"wg_ip": "10.1.1.1", "wg_interface": "wga"},
    "beta": {"wg_ip": "10.1.1.2", "wg_interface": "wgb", "wg_static_endpoint": "198.51.100.2:50000"},
}
# Unreachable: nothing listens on port 9 of localhost.
DELTA = {"wg_ip": "10.1.1.4", "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9}

DEPLOY = """
- name: Deploy the agent's files and start it, as site.yml's agent role does
  hosts: wg_mesh
  gather_facts: true
  gather_subset: [min]
  vars:
    wg_static_peers: {beta: {endPoint: "198.51.100.2:50000", adminPort: 50001, wgIp: 10.1.1.2}}
  tasks:
    - name: Run the agent role's preflight
      ansible.builtin.include_role: {name: wg_netmanager.mesh.agent, tasks_from: preflight.yml, public: true}
    - name: Run the agent role's identity tasks
      ansible.builtin.include_role: {name: wg_netmanager.mesh.agent, tasks_from: identity.yml, public: true}
    - name: Run the agent role's configure tasks
      ansible.builtin.include_role: {name: wg_netmanager.mesh.agent, tasks_from: configure.yml}
"""


def digest(key: str | None) -> str | None:
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else None


class Mesh:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ctl, self.state, self.out, self.run_dir = tmp / "ctl", tmp / "state", tmp / "out", tmp / "run"
        for d in (self.ctl, self.out, self.run_dir):
            d.mkdir()
        self.key_file = self.ctl / "mesh.key"
        (tmp / "deploy.yml").write_text(DEPLOY)
        self.outputs: list[str] = []
        self.env = dict(os.environ)
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collection_paths.tree),
            ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
            ANSIBLE_HOME=str(tmp / "ansible-home"),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            ANSIBLE_HOST_KEY_CHECKING="0",
        )

    def play(self, playbook: Path, *args: str, delta: bool = False, ok: bool = True) -> dict[str, Any]:
        """One run; returns {'stats', 'tasks': name -> host -> result, 'failed': host -> msg}."""
        hosts = {h: {**v, "ansible_connection": "local"} for h, v in HOSTS.items()}
        if delta:
            hosts["delta"] = DELTA
        settings = {"wg_subnet": "10.1.1.0/24", "wg_shared_key_file": str(self.key_file)}
        group = {"vars": {**settings, "ansible_become": False}, "hosts": hosts}
        inventory = self.tmp / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"wg_mesh": group}}}))
        node = "{{ inventory_hostname }}"
        run = f"{self.run_dir}/{node}"
        fake = [sys.executable, str(FAKE_AGENT), f"{self.out}/{node}/net.yaml", f"{run}.sock"]
        fake += [f"{run}.events", f"{run}.hears"]
        extra = {
            "wg_agent_venv": str(VENV_BIN.parent),
            "wg_agent_state_dir": str(self.state),
            "wg_agent_config_dir": f"{self.out}/{node}",
            "wg_agent_service_manager": "none",
            "wg_agent_command": fake,
            "wg_agent_pidfile": f"{run}.pid",
            "wg_agent_status_socket": f"{run}.sock",
            # The role's start, with the log beside the others instead of /var/log.
            "wg_agent_ssd_start": ["start-stop-daemon", "--start", "--background", "--make-pidfile",
                                   "--pidfile", f"{run}.pid", "--output", f"{run}.log",
                                   "--startas", fake[0], "--", *fake[1:]],
            "wg_agent_reload_timeout": 3,
            "wg_rotate_timeout": 4,
        }  # fmt: skip
        argv = [ansible_bin("ansible-playbook"), "-i", str(inventory), str(playbook), "-e", json.dumps(extra)]
        started = time.monotonic()
        proc = subprocess.run([*argv, *args], env=self.env, capture_output=True, text=True, timeout=600)
        print(f"{playbook.name} {' '.join(args)}: {time.monotonic() - started:.1f} s")
        self.outputs.append(proc.stdout + proc.stderr)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON output:\n{proc.stdout}\n{proc.stderr}") from None
        tasks: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        for play in doc["plays"]:
            for task in play["tasks"]:
                name = task["task"]["name"].split(" : ", 1)[-1]  # without "ROLE : "
                tasks.setdefault(name, {}).update(task["hosts"])
                for host, result in task["hosts"].items():
                    if (result.get("failed") or result.get("unreachable")) and not result.get("skipped"):
                        failed.setdefault(host, result.get("msg", ""))
        result = {"stats": doc["stats"], "tasks": tasks, "failed": failed}
        if ok:
            assert not failed, json.dumps(failed, indent=1) + json.dumps(tasks, indent=1)[-4000:]
        return result

    def deploy(self, *args: str) -> dict[str, Any]:
        return self.play(self.tmp / "deploy.yml", *args)

    def rotate(self, *args: str, **kw: Any) -> dict[str, Any]:
        return self.play(COLLECTION_ROOT / "playbooks/rotate.yml", *args, **kw)

    def net(self, host: str) -> dict[str, Any]:
        return yaml.safe_load((self.out / host / "net.yaml").read_text())

    def node_keys(self, host: str) -> tuple[str, str | None]:
        """The node's (key, previous key or None), from the files beside its net.yaml."""
        shared, previous = self.out / host / "shared.key", self.out / host / "shared.key.previous"
        assert {p.stat().st_mode & 0o777 for p in (shared, previous) if p.exists()} == {0o600}
        return shared.read_text().strip(), previous.read_text().strip() if previous.exists() else None

    def keys(self) -> tuple[str, str | None]:
        """The controller's (key, previous key or None)."""
        previous = self.ctl / "mesh.key.previous"
        return self.key_file.read_text().strip(), previous.read_text().strip() if previous.exists() else None

    def events(self, host: str) -> list[dict[str, Any]]:
        path = self.run_dir / f"{host}.events"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def wait_started(self, deadline: float = 15) -> None:
        """Until every agent the role started (in the background) has read its files."""
        end = time.monotonic() + deadline
        while not all((self.events(h) or [{}])[-1].get("event") == "start" for h in HOSTS):
            if time.monotonic() > end:
                raise AssertionError(f"agents not started: {[self.events(h) for h in HOSTS]}")
            time.sleep(0.1)

    def hears(self, host: str, names: list[str]) -> None:
        (self.run_dir / f"{host}.hears").write_text(json.dumps(names))

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.tmp)): p.read_bytes()
            for root in (self.ctl, self.out)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    @contextlib.contextmanager
    def deaf(self, host: str) -> Iterator[None]:
        """The host's agent misses every SIGHUP meanwhile (its pidfile is away), as if the
        run had lost the host before its handlers ran."""
        pidfile = self.run_dir / f"{host}.pid"
        pidfile.rename(f"{pidfile}.away")
        try:
            yield
        finally:
            Path(f"{pidfile}.away").rename(pidfile)

    def stop(self) -> None:
        for pidfile in self.run_dir.glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass


def changed(run: dict[str, Any]) -> dict[str, int]:
    return {h: s["changed"] for h, s in run["stats"].items() if h != "localhost"}


def new_events(mesh: Mesh, before: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    return {h: mesh.events(h)[before[h] :] for h in HOSTS}


def wrote(mesh: Mesh, before: dict[str, bytes]) -> list[str]:
    """The files under ctl/ and out/ that differ from `before` (new, changed or gone)."""
    after = mesh.snapshot()
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def mark(mesh: Mesh) -> dict[str, int]:
    return {h: len(mesh.events(h)) for h in HOSTS}


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not AGENT.exists():
        pytest.skip("the agent is not installed in .venv (run scripts/setup)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the role writes the agent's files owned by root")
    if shutil.which("start-stop-daemon") is None:
        pytest.skip("needs start-stop-daemon")
    mesh = Mesh(tmp_path_factory.mktemp("rotate"))
    s: dict[str, Any] = {"mesh": mesh}
    finish = ("-e", "wg_rotate_phase=finish")
    try:
        s["deploy"] = mesh.deploy()
        mesh.wait_started()
        s["k0"] = mesh.keys()
        s["net0"] = {h: (mesh.out / h / "net.yaml").read_text() for h in HOSTS}
        s["node_keys0"] = {h: mesh.node_keys(h) for h in HOSTS}
        s["deployed"] = m = mark(mesh)

        before = mesh.snapshot()
        s["check1"] = mesh.rotate("--check", "--diff")
        s["check1_wrote"] = wrote(mesh, before)
        with mesh.deaf("alpha"):
            s["phase1"] = mesh.rotate("--limit", "alpha")
        s["k1"] = mesh.keys()
        s["modes"] = {p.name: p.stat().st_mode & 0o777 for p in mesh.ctl.iterdir()}
        s["phase1_events"], m = new_events(mesh, m), mark(mesh)
        s["phase1_nets"] = {h: mesh.net(h) for h in HOSTS}
        s["phase1_keys"] = {h: mesh.node_keys(h) for h in HOSTS}
        s["phase1_text"] = (mesh.out / "alpha" / "net.yaml").read_text()

        before = mesh.snapshot()
        s["refused"] = mesh.rotate(*finish, "--limit", "alpha,delta", delta=True, ok=False)
        s["refused_wrote"] = wrote(mesh, before)

        s["deploy_mid"] = mesh.deploy()
        s["deploy_mid_events"], m = new_events(mesh, m), mark(mesh)
        s["deploy_mid_nets"] = {h: mesh.net(h) for h in HOSTS}
        s["deploy_mid_keys"] = {h: mesh.node_keys(h) for h in HOSTS}
        s["phase1_again"] = mesh.rotate()
        s["phase1_again_keys"] = mesh.keys()
        s["phase1_again_events"], m = new_events(mesh, m), mark(mesh)

        mesh.hears("alpha", ["beta"])
        before = mesh.snapshot()
        s["refused_hears"] = mesh.rotate(*finish, ok=False)
        s["refused_hears_wrote"] = wrote(mesh, before)
        mesh.hears("alpha", [])
        before = mesh.snapshot()
        s["check2"] = mesh.rotate(*finish, "--check")
        s["check2_wrote"] = wrote(mesh, before)
        s["refused_events"], m = new_events(mesh, m), mark(mesh)

        mesh.hears("alpha", ["mallory"])  # taken out of the inventory, still on the old key
        s["phase2"] = mesh.rotate(*finish)
        mesh.hears("alpha", [])
        s["k2"] = mesh.keys()
        s["phase2_events"], m = new_events(mesh, m), mark(mesh)
        s["final_nets"] = {h: mesh.net(h) for h in HOSTS}
        s["final_keys"] = {h: mesh.node_keys(h) for h in HOSTS}
        s["final_text"] = (mesh.out / "alpha" / "net.yaml").read_text()
        s["phase2_again"] = mesh.rotate(*finish)
        s["phase2_again_events"] = new_events(mesh, m)
    finally:
        mesh.stop()
    return s


def test_deployment_starts_each_agent_with_one_key(steps: dict[str, Any]) -> None:
    mesh, (key, previous) = steps["mesh"], steps["k0"]
    assert previous is None
    for host in HOSTS:
        assert mesh.events(host)[-1 + steps["deployed"][host]] == {
            "event": "start",
            "shared": digest(key),
            "previous": None,
        }
        assert "previousSharedKey" not in steps["net0"][host]
        assert steps["node_keys0"][host] == (key, None)
        assert mesh.net(host)["network"]["sharedKeyFile"] == "shared.key"
        assert mesh.net(host)["peers"]["beta"]["endPoint"] == "198.51.100.2:50000"


def test_check_mode_writes_no_key_and_says_what_would_change(steps: dict[str, Any]) -> None:
    run = steps["check1"]
    assert steps["check1_wrote"] == []
    (state,) = run["tasks"][_KEYS].values()
    assert state["changed"] and state["steps"] == ["keep-previous", "new-key"]
    assert state["diff"]["after"].startswith("rotation: in progress")
    for task in (
        "Write net.yaml",
        "Write the shared key file",
        "Write the previous shared key file (rotation in progress)",
    ):
        assert all(run["tasks"][task][h]["changed"] for h in HOSTS), task
    # net.yaml holds no key: --diff shows it.
    after = yaml.safe_load(run["tasks"]["Write net.yaml"]["alpha"]["diff"][0]["after"])
    assert after["network"]["previousSharedKeyFile"] == "shared.key.previous"
    assert "(check mode: the new key)" not in json.dumps(run)  # the stand-in is no_log too


def test_phase1_keeps_the_old_key_and_makes_a_new_one(steps: dict[str, Any]) -> None:
    (k0, _), (k1, previous) = steps["k0"], steps["k1"]
    assert previous == k0 and k1 != k0
    assert steps["modes"] == {"mesh.key": 0o600, "mesh.key.previous": 0o600, "mesh-keys": 0o755}


def test_phase1_writes_both_keys_and_reloads_never_restarts(steps: dict[str, Any]) -> None:
    (k1, k0), run = steps["k1"], steps["phase1"]
    network = steps["phase1_nets"]["alpha"]["network"]
    assert steps["phase1_keys"]["alpha"] == (k1, k0)
    assert network["previousSharedKeyFile"] == "shared.key.previous"
    assert run["tasks"]["Reload wg_netmanager (no init system)"]["alpha"]["changed"]
    assert not any("Restart" in name or "Stop" in name for name in run["tasks"])
    assert '  sharedKeyFile: "shared.key"\n  # A rotation is in progress' in steps["phase1_text"]
    assert (
        '\n  previousSharedKeyFile: "shared.key.previous"\n  subnet: "10.1.1.0/24"\n' in steps["phase1_text"]
    )
    assert k0 not in steps["phase1_text"] and k1 not in steps["phase1_text"]
    assert steps["phase1_events"] == {"alpha": [], "beta": []}  # alpha missed the SIGHUP
    assert "previousSharedKeyFile" not in steps["phase1_nets"]["beta"]["network"]  # not reached
    assert steps["phase1_keys"]["beta"] == (k0, None)
    assert set(run["stats"]) == {"alpha"}


def test_phase1_reports_each_node_and_what_phase2_would_say(steps: dict[str, Any]) -> None:
    (report,) = steps["phase1"]["tasks"]["Report where the rotation stands"].values()
    assert report["msg"][:2] == [
        "alpha: one key (not rotating)",
        "beta: not reached (unreachable, failed, or outside --limit)",
    ]
    assert report["msg"][2].startswith("Phase 2 would refuse now: alpha: not rotating")


_KEYS = "Start a rotation on the controller unless one is in progress, or finish it (phase 2)"
_WAIT = "Wait until the agent runs both keys and hears nobody on the previous one"
_GATE = "Refuse to finish unless every node of wg_mesh runs the new key and hears nobody on the old one"


def test_phase2_refuses_unless_every_node_is_reached_and_rotating(steps: dict[str, Any]) -> None:
    run = steps["refused"]
    assert steps["refused_wrote"] == []
    message = next(iter(run["tasks"][_GATE].values()))["msg"]
    assert "alpha: not rotating (its agent has one key: phase 1 has not reached it)" in message
    assert "beta: not reached (unreachable, failed, or outside --limit)" in message  # --limit
    assert "delta: not reached (unreachable, failed, or outside --limit)" in message  # unreachable
    assert run["stats"]["delta"]["unreachable"] == 1
    assert _KEYS not in run["tasks"]


def test_a_deployment_mid_rotation_keeps_both_keys_and_reloads(steps: dict[str, Any]) -> None:
    (k1, k0), events = steps["k1"], steps["deploy_mid_events"]
    assert events == {
        "alpha": [],
        "beta": [{"event": "reload", "shared": digest(k1), "previous": digest(k0)}],
    }
    # The two key files, net.yaml, the reload.
    assert changed(steps["deploy_mid"]) == {"alpha": 0, "beta": 4}
    for host in HOSTS:
        assert steps["deploy_mid_nets"][host]["network"]["previousSharedKeyFile"] == "shared.key.previous"
        assert steps["deploy_mid_keys"][host] == (k1, k0)


def test_phase1_again_makes_no_other_key_and_reloads_only_the_agent_that_missed_it(
    steps: dict[str, Any],
) -> None:
    (k1, k0) = steps["k1"]
    assert steps["phase1_again_keys"] == steps["k1"]
    assert steps["phase1_again_events"] == {
        "alpha": [{"event": "reload", "shared": digest(k1), "previous": digest(k0)}],
        "beta": [],
    }
    assert changed(steps["phase1_again"]) == {"alpha": 2, "beta": 0}  # the notice, the reload
    (report,) = steps["phase1_again"]["tasks"]["Report where the rotation stands"].values()
    assert report["msg"][-1] == "Phase 2 (-e wg_rotate_phase=finish) can run now."


def test_phase2_refuses_while_a_node_hears_the_old_key(steps: dict[str, Any]) -> None:
    run = steps["refused_hears"]
    message = next(iter(run["tasks"][_GATE].values()))["msg"]
    assert "alpha: hears beta on the previous key" in message and "beta:" not in message
    assert steps["refused_hears_wrote"] == []
    assert run["tasks"][_WAIT]["alpha"]["attempts"] > 1  # it waited wg_rotate_timeout for that to end


def test_phase2_check_mode_removes_nothing(steps: dict[str, Any]) -> None:
    assert steps["check2_wrote"] == []
    assert steps["refused_events"] == {h: [] for h in HOSTS}
    (state,) = steps["check2"]["tasks"][_KEYS].values()
    assert state["changed"] and state["steps"] == ["drop-previous"]
    for task in "Write net.yaml", "Remove the previous shared key file (no rotation in progress)":
        assert all(steps["check2"]["tasks"][task][h]["changed"] for h in HOSTS), task


def test_phase2_drops_the_previous_key_everywhere_with_reloads(steps: dict[str, Any]) -> None:
    (k1, _), (k2, previous) = steps["k1"], steps["k2"]
    assert (k2, previous) == (k1, None)
    assert steps["phase2_events"] == {
        h: [{"event": "reload", "shared": digest(k1), "previous": None}] for h in HOSTS
    }
    for host in HOSTS:
        assert steps["final_keys"][host] == (k1, None)
        assert "previousSharedKeyFile" not in steps["final_nets"][host]["network"]
    # The same file as before the rotation: only the key file changed.
    assert steps["final_text"] == steps["net0"]["alpha"]


def test_phase2_cuts_off_a_peer_outside_the_inventory_without_waiting(steps: dict[str, Any]) -> None:
    alpha = steps["phase2"]["tasks"][_WAIT]["alpha"]
    assert alpha["attempts"] == 1 and alpha["ansible_facts"]["wg_mesh"]["onPreviousKey"] == ["mallory"]


def test_phase2_again_changes_nothing(steps: dict[str, Any]) -> None:
    assert changed(steps["phase2_again"]) == {h: 0 for h in HOSTS}
    assert steps["phase2_again_events"] == {h: [] for h in HOSTS}


def test_no_run_after_the_deployment_restarted_an_agent(steps: dict[str, Any]) -> None:
    mesh = steps["mesh"]
    for host in HOSTS:
        kinds = [e["event"] for e in mesh.events(host)[steps["deployed"][host] :]]
        assert set(kinds) <= {"reload", "stop"} and "stop" not in kinds[:-1], kinds  # stop: the test's


def test_no_key_in_any_output(steps: dict[str, Any]) -> None:
    keys = {steps["k0"][0], steps["k1"][0]}
    for output in steps["mesh"].outputs:
        for key in keys:
            assert key not in output
