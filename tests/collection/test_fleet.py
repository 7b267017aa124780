"""playbooks/site.yml itself on three fake nodes: --check, --limit and --tags as a fleet uses them.

The nodes are localhost, as in test_rotate.py: one interface name each (so one private key
each under one state directory; the controller venv's agent stands in for theirs, for
`pubkey`), their files in a directory per node, and tests/collection/fake_agent.py as the
agent, started by the role (service manager `none`: start-stop-daemon and a pidfile). The
runs skip the tags `install` (the venv is the agent) and `health` (the fake agent's socket is
not where the health role looks). Needs root (the role's files are owned by root) and
start-stop-daemon.

One sequence of runs, each test looking at one step: a check run before anything exists
(writes nothing, not even the shared key); the first run; a second (changes nothing); the
inventory gains a static node: a check run (writes nothing, shows net.yaml's diff), a run
under --limit alpha, a full run (alpha's net.yaml unchanged: the --limit run wrote the same
bytes); the static node goes again and a --tags configure run applies that (a restart of that
node, a reload of the others);
a run on a node whose net.yaml still has the key inline (an older deployment).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
    "charlie": {"wg_ip": "10.1.1.3", "wg_interface": "wgc"},
}
CHARLIE_STATIC = {"wg_static_endpoint": "198.51.100.3:50000"}
SKIP = ("--skip-tags", "install,health")
NET_TASK = "Write net.yaml"


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ctl, self.state, self.out, self.run_dir = tmp / "ctl", tmp / "state", tmp / "out", tmp / "run"
        for d in (self.out, self.run_dir):
            d.mkdir()
        self.hosts = {h: dict(v) for h, v in HOSTS.items()}
        self.group_vars: dict[str, Any] = {}
        # A command line that ansible-playbook runs in (e.g. `ip netns exec NS`).
        self.wrap: list[str] = []
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
        )

    def play(self, *args: str) -> dict[str, Any]:
        """One site.yml run; returns {'stats', 'tasks': name -> host -> result}."""
        group = {
            "vars": {
                "ansible_connection": "local",
                "ansible_become": False,
                "wg_subnet": "10.1.1.0/24",
                "wg_shared_key_file": str(self.ctl / "mesh.key"),
                **self.group_vars,
            },
            "hosts": self.hosts,
        }
        inventory = self.tmp / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"wg_mesh": group}}}))
        node = "{{ inventory_hostname }}"
        run = f"{self.run_dir}/{node}"
        fake = [sys.executable, str(FAKE_AGENT), f"{self.out}/{node}/net.yaml", f"{run}.sock"]
        fake += [f"{run}.events", f"{run}.hears"]
        # The controller's venv is every node's agent (for `pubkey`), unless a host names its
        # own (fleet_venv: a host taken out, whose virtualenv is removed).
        extra = {
            "wg_agent_venv": f"{{{{ fleet_venv | default('{VENV_BIN.parent}') }}}}",
            "wg_agent_home": f"{self.tmp}/home/{node}",
            "wg_agent_log_file": f"{run}.log",
            "wg_agent_state_dir": str(self.state),
            "wg_agent_config_dir": f"{self.out}/{node}",
            "wg_agent_service_manager": "none",
            "wg_agent_command": fake,
            "wg_agent_pidfile": f"{run}.pid",
            "wg_agent_status_socket": f"{run}.sock",
            "wg_agent_ssd_start": ["start-stop-daemon", "--start", "--background", "--make-pidfile",
                                   "--pidfile", f"{run}.pid", "--output", f"{run}.log",
                                   "--startas", fake[0], "--", *fake[1:]],
        }  # fmt: skip
        argv = [
            *self.wrap,
            ansible_bin("ansible-playbook"),
            "-i",
            str(inventory),
            str(COLLECTION_ROOT / "playbooks/site.yml"),
        ]
        started = time.monotonic()
        proc = subprocess.run(
            [*argv, "-e", json.dumps(extra), *args], env=self.env, capture_output=True, text=True, timeout=600
        )
        print(f"site.yml {' '.join(args)}: {time.monotonic() - started:.1f} s")
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
        assert proc.returncode == 0 and not failed, json.dumps(tasks, indent=1)[-6000:] + proc.stderr
        return {"stats": doc["stats"], "tasks": tasks}

    def snapshot(self) -> dict[str, tuple[int, bytes]]:
        """Every file the runs keep, on the controller and the nodes: path -> (mode, bytes)."""
        return {
            str(p.relative_to(self.tmp)): (p.stat().st_mode & 0o777, p.read_bytes())
            for root in (self.ctl, self.state, self.out, self.run_dir, self.tmp / "home")
            if root.exists()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    def files(self, name: str) -> dict[str, str]:
        return {h: (self.out / h / name).read_text() for h in HOSTS}

    def events(self, host: str) -> list[dict[str, Any]]:
        path = self.run_dir / f"{host}.events"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def wait_started(self, deadline: float = 15) -> None:
        """Until every agent the role started (in the background) has read its files."""
        end = time.monotonic() + deadline
        while not all((self.events(h) or [{}])[-1].get("event") in ("start", "reload") for h in HOSTS):
            if time.monotonic() > end:
                raise AssertionError(f"agents not started: {[self.events(h) for h in HOSTS]}")
            time.sleep(0.1)

    def stop(self) -> None:
        for pidfile in self.run_dir.glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass


def changed(run: dict[str, Any]) -> dict[str, int]:
    return {h: s["changed"] for h, s in run["stats"].items() if h != "localhost"}


def wrote(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not AGENT.exists():
        pytest.skip("the agent is not installed in .venv (run scripts/setup)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the role writes the agent's files owned by root")
    if shutil.which("start-stop-daemon") is None:
        pytest.skip("needs start-stop-daemon")
    fleet = Fleet(tmp_path_factory.mktemp("fleet"))
    s: dict[str, Any] = {"fleet": fleet}
    try:
        s["check_fresh"] = fleet.play("--check", "--diff", *SKIP)
        s["check_fresh_files"] = fleet.snapshot()
        s["check_fresh_ctl"] = fleet.ctl.exists()
        s["check_fresh_events"] = {h: fleet.events(h) for h in HOSTS}

        s["first"] = fleet.play(*SKIP)
        fleet.wait_started()
        s["key"] = (fleet.ctl / "mesh.key").read_text().strip()
        s["first_net"] = fleet.files("net.yaml")
        s["second"] = fleet.play(*SKIP)

        fleet.hosts["charlie"].update(CHARLIE_STATIC)
        before = fleet.snapshot()
        s["check"] = fleet.play("--check", "--diff", *SKIP)
        s["check_wrote"] = wrote(before, fleet.snapshot())
        s["limit"] = fleet.play("--limit", "alpha", *SKIP)
        s["limit_net"] = fleet.files("net.yaml")
        s["full"] = fleet.play(*SKIP)
        fleet.wait_started()
        s["full_net"] = fleet.files("net.yaml")

        del fleet.hosts["charlie"]["wg_static_endpoint"]
        s["tags_before"] = {h: len(fleet.events(h)) for h in HOSTS}
        s["tags"] = fleet.play("--tags", "configure")
        fleet.wait_started()
        s["tags_events"] = {h: fleet.events(h)[s["tags_before"][h] :] for h in HOSTS}
        s["tags_net"] = fleet.files("net.yaml")

        # alpha as an older deployment left it: the key inline in net.yaml, no key file.
        old = (fleet.out / "alpha" / "net.yaml").read_text()
        inline = old.replace('sharedKeyFile: "shared.key"', f'sharedKey: "{s["key"]}"')
        assert inline != old
        (fleet.out / "alpha" / "net.yaml").write_text(inline)
        (fleet.out / "alpha" / "shared.key").unlink()
        s["upgrade_before"] = len(fleet.events("alpha"))
        s["upgrade"] = fleet.play("--diff", *SKIP)
        s["upgrade_events"] = fleet.events("alpha")[s["upgrade_before"] :]
        s["upgrade_net"] = fleet.files("net.yaml")
    finally:
        fleet.stop()
    return s


def test_check_mode_before_the_first_run_writes_nothing(steps: dict[str, Any]) -> None:
    run = steps["check_fresh"]
    assert not steps["check_fresh_ctl"]  # no shared key, no node keys
    assert steps["check_fresh_files"] == {}  # no key, net.yaml or peer.yaml on any node
    assert steps["check_fresh_events"] == {h: [] for h in HOSTS}  # no agent started
    (say,) = run["tasks"]["Say that a real run would create the mesh's shared key (check mode)"].values()
    assert say["changed"] and "mesh.key does not exist" in say["msg"]
    for task in NET_TASK, "Write the shared key file", "Write peer.yaml":
        assert all(run["tasks"][task][h]["changed"] for h in HOSTS), task
    diff = run["tasks"][NET_TASK]["alpha"]["diff"][0]
    assert yaml.safe_load(diff["after"])["network"] == {
        "sharedKeyFile": "shared.key",
        "subnet": "10.1.1.0/24",
    }
    assert "check mode: the key a real run makes" not in json.dumps(run)  # the key file task is no_log


def test_the_first_run_puts_the_key_in_a_file_of_its_own(steps: dict[str, Any]) -> None:
    fleet, key = steps["fleet"], steps["key"]
    assert len(set(steps["first_net"].values())) == 1  # the same net.yaml on every node
    for host in HOSTS:
        key_file = fleet.out / host / "shared.key"
        assert (key_file.read_text(), key_file.stat().st_mode & 0o777) == (key + "\n", 0o600)
        assert key not in steps["first_net"][host]
        assert fleet.events(host)[0]["shared"] is not None
    assert changed(steps["second"]) == {h: 0 for h in HOSTS}


def test_check_mode_on_a_deployed_mesh_writes_nothing_and_shows_the_diff(steps: dict[str, Any]) -> None:
    run = steps["check"]
    assert steps["check_wrote"] == []
    written = run["tasks"][NET_TASK]
    assert all(written[h]["changed"] for h in HOSTS)
    diff = written["alpha"]["diff"][0]
    assert "charlie:" in diff["after"] and "charlie:" not in diff["before"]
    assert "198.51.100.3:50000" in diff["after"]
    assert not any(run["tasks"]["Write the shared key file"][h]["changed"] for h in HOSTS)


def test_limit_writes_net_yaml_byte_for_byte_as_a_full_run(steps: dict[str, Any]) -> None:
    limit, full = steps["limit"], steps["full"]
    assert set(limit["stats"]) == {"alpha"}
    assert limit["tasks"][NET_TASK]["alpha"]["changed"]
    assert "charlie:" in steps["limit_net"]["alpha"]
    assert list(yaml.safe_load(steps["limit_net"]["alpha"])["peers"]) == ["beta", "charlie"]  # group order
    assert not full["tasks"][NET_TASK]["alpha"]["changed"]  # the --limit run wrote the same bytes
    assert set(steps["full_net"].values()) == {steps["limit_net"]["alpha"]}
    assert full["tasks"][NET_TASK]["beta"]["changed"] and full["tasks"][NET_TASK]["charlie"]["changed"]


def test_tags_configure_rewrites_the_files_and_reloads_or_restarts_the_agents(steps: dict[str, Any]) -> None:
    run = steps["tags"]
    assert all(run["tasks"][NET_TASK][h]["changed"] for h in HOSTS)
    assert set(steps["tags_net"].values()) == {steps["first_net"]["alpha"]}  # as before charlie was static
    # charlie is no longer a static node: it restarts; the others take the change by a reload.
    events = {h: [e["event"] for e in steps["tags_events"][h]] for h in HOSTS}
    assert events == {"alpha": ["reload"], "beta": ["reload"], "charlie": ["stop", "start"]}, events
    assert "Install WireGuard packages" not in run["tasks"]


def test_an_older_net_yaml_with_the_key_inline_moves_it_out_with_a_reload(steps: dict[str, Any]) -> None:
    run = steps["upgrade"]
    written = run["tasks"][NET_TASK]
    assert written["alpha"]["changed"] and written["alpha"]["censored"]  # its diff would show the key
    assert not written["beta"]["changed"] and not written["beta"].get("censored")
    assert [e["event"] for e in steps["upgrade_events"]] == ["reload"]
    assert set(steps["upgrade_net"].values()) == {steps["first_net"]["alpha"]}
    assert changed(run) == {"alpha": 3, "beta": 0, "charlie": 0}  # the key file, net.yaml, the reload


def test_no_key_in_any_output(steps: dict[str, Any]) -> None:
    for output in steps["fleet"].outputs:
        assert steps["key"] not in output
