"""Where the agent keeps its state and how it runs without an init system, per OS.

Rendered for fake hosts (localhost with another OS's facts), since this machine is none of
them: OpenWrt's state under /etc (vars and service files: a mock, no OpenWrt here), macOS's
and FreeBSD's `none` mode without start-stop-daemon or /run (rendered only; FreeBSD's
daemon(8) cannot run here). Run for real on this machine: the POSIX sh commands macOS uses
(start, status, reload, stop) on a stand-in agent, under dash and bash --posix (macOS's
/bin/sh is bash); the move of a key from an older deployment's state directory; and the raw
Python bootstrap, on hosts whose interpreter is made missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from collection_paths import COLLECTION_ROOT
from os_hosts import facts, run_playbook

from wg_netmanager.core import config as agent_config

pytestmark = pytest.mark.collection

ROLE_VARS = yaml.safe_load((COLLECTION_ROOT / "roles/agent/vars/main.yml").read_text())
NONE_COMMANDS = ["ssd_start", "ssd_status", "ssd_stop", "ssd_reload"]
HOSTS = {
    "openwrt": facts("OpenWrt", "OpenWrt", "openwrt_init"),
    "debian": facts("Debian", "Debian", "systemd", wg_backend="wireguard-go"),
    "alpine": facts("Alpine", "Alpine", "openrc", wg_backend="wireguard-go"),
    "macos": facts("MacOSX", "Darwin", "launchd", wg_service_manager="none"),
    "freebsd": facts("FreeBSD", "FreeBSD", "bsdinit", wg_service_manager="none"),
}
TEMPLATES = ["wg_netmanager.service", "wg_netmanager.openrc", "wg_netmanager.procd"]

PLAYBOOK = """
- name: Show where the agent keeps its state and how it runs, per OS
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the wireguard role's preflight
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.wireguard
        tasks_from: preflight.yml
        public: true
    - name: Run the agent role's preflight
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: preflight.yml
        public: true
    - name: Report the choices
      ansible.builtin.debug:
        msg:
          state_dir: "{{ wg_agent_state_dir }}"
          run_dir: "{{ wg_agent_run_dir }}"
          legacy_state_dir: "{{ wg_agent_legacy_state_dir }}"
          sysupgrade_conf: "{{ wg_agent_sysupgrade_conf }}"
          command: "{{ wg_agent_command }}"
          pidfile: "{{ wg_agent_pidfile }}"
          status_socket: "{{ wg_agent_status_socket }}"
          ssd_start: "{{ wg_agent_ssd_start }}"
          ssd_status: "{{ wg_agent_ssd_status }}"
          ssd_stop: "{{ wg_agent_ssd_stop }}"
          ssd_reload: "{{ wg_agent_ssd_reload }}"
    - name: Render the service definitions
      ansible.builtin.template:
        src: "{{ templates }}/{{ item }}.j2"
        dest: "{{ out }}/{{ inventory_hostname }}-{{ item }}"
        mode: "0644"
      loop: "{{ names }}"
"""


def _render(tmp: Path, hosts: dict[str, Any], **extra: Any) -> tuple[dict[str, Any], Path]:
    out = tmp / "out"
    out.mkdir(parents=True)
    templates = str(COLLECTION_ROOT / "roles/agent/templates")
    tasks = run_playbook(
        tmp, hosts, PLAYBOOK, {"out": str(out), "templates": templates, "names": TEMPLATES, **extra}
    )
    failed = {h: r.get("msg") for t in tasks.values() for h, r in t.items() if r.get("failed")}
    assert not failed, failed
    return {h: r["msg"] for h, r in tasks["Report the choices"].items()}, out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return _render(tmp_path_factory.mktemp("variants"), HOSTS)


def test_the_roles_defaults_are_the_agents() -> None:
    """The command line leaves out --state-dir and --run-dir where they are the agent's own."""
    assert ROLE_VARS["wg_agent_default_state_dir"] == str(agent_config.DEFAULT_STATE_DIR)
    assert ROLE_VARS["wg_agent_default_run_dir"] == str(agent_config.DEFAULT_RUN_DIR)


def test_openwrt_keeps_the_key_under_etc(rendered: tuple[dict[str, Any], Path]) -> None:
    """/var is a tmpfs on OpenWrt: a key there was a new identity at every boot."""
    openwrt = rendered[0]["openwrt"]
    assert openwrt["state_dir"] == "/etc/wg_netmanager/state"
    assert openwrt["command"][-2:] == ["--state-dir", "/etc/wg_netmanager/state"]
    assert "--run-dir" not in openwrt["command"]  # /run is /tmp/run there: emptied at boot, as it should be
    assert openwrt["legacy_state_dir"] == "/var/lib/wg_netmanager"
    assert openwrt["sysupgrade_conf"] == "/etc/sysupgrade.conf"


def test_every_service_file_follows_the_state_directory(rendered: tuple[dict[str, Any], Path]) -> None:
    out = rendered[1]
    procd = (out / "openwrt-wg_netmanager.procd").read_text()
    assert "\tmkdir -p -m 0700 /run/wg_netmanager /etc/wg_netmanager/state\n" in procd
    assert " --state-dir /etc/wg_netmanager/state\n" in procd
    openrc = (out / "openwrt-wg_netmanager.openrc").read_text()
    assert "\tcheckpath --directory --mode 0700 /run/wg_netmanager /etc/wg_netmanager/state\n" in openrc
    assert (
        'command_args="-c /etc/wg_netmanager/net.yaml -p /etc/wg_netmanager/peer.yaml --state-dir' in openrc
    )
    unit = (out / "openwrt-wg_netmanager.service").read_text().splitlines()
    assert "ReadWritePaths=/etc/wg_netmanager/state /run/wg_netmanager /var/run/wireguard" in unit
    assert "RuntimeDirectory=wg_netmanager wireguard" in unit
    # StateDirectory= is relative to /var/lib: it would make a directory the agent does not use.
    assert not [line for line in unit if line.startswith("StateDirectory")]
    assert any(
        line.startswith("ExecStart=") and line.endswith(" --state-dir /etc/wg_netmanager/state")
        for line in unit
    )


def test_other_systems_keep_their_command_lines(rendered: tuple[dict[str, Any], Path]) -> None:
    """No --state-dir or --run-dir where the defaults hold: an upgrade restarts nothing."""
    results, out = rendered
    for host in ("debian", "alpine"):
        assert results[host]["state_dir"] == "/var/lib/wg_netmanager"
        assert results[host]["legacy_state_dir"] == "" and results[host]["sysupgrade_conf"] == ""
        assert not {"--state-dir", "--run-dir"} & set(results[host]["command"])
    unit = (out / "debian-wg_netmanager.service").read_text().splitlines()
    assert "StateDirectory=wg_netmanager" in unit
    assert "ReadWritePaths=/var/lib/wg_netmanager /run/wg_netmanager /var/run/wireguard" in unit


@pytest.mark.parametrize("host", ["macos", "freebsd"])
def test_none_mode_needs_no_start_stop_daemon_and_no_run(
    rendered: tuple[dict[str, Any], Path], host: str
) -> None:
    result = rendered[0][host]
    assert result["run_dir"] == "/var/run/wg_netmanager"
    assert result["pidfile"] == "/var/run/wg_netmanager/agent.pid"
    assert result["status_socket"] == "/var/run/wg_netmanager/wg0.sock"
    assert result["command"][-2:] == ["--run-dir", "/var/run/wg_netmanager"]
    for name in NONE_COMMANDS:
        argv = result[name]
        assert "start-stop-daemon" not in argv, (name, argv)
        assert not [a for a in argv if a.startswith("/run/")], (name, argv)
    assert result["ssd_reload"][:2] == ["/bin/sh", "-c"]
    assert result["ssd_reload"][-2:] == ["/var/run/wg_netmanager/agent.pid", result["command"][0]]


def test_freebsd_starts_the_agent_under_daemon(rendered: tuple[dict[str, Any], Path]) -> None:
    """daemon(8) restarts it and keeps two pidfiles: stop and status ask the supervisor
    (which runs on while the agent waits to be restarted), reload signals the agent."""
    result = rendered[0]["freebsd"]
    supervisor = "/var/run/wg_netmanager/daemon.pid"
    assert result["ssd_start"] == [
        *("daemon", "-f", "-o", "/var/log/wg_netmanager.log", "-P", supervisor),
        *("-p", "/var/run/wg_netmanager/agent.pid", "-R", "2", "-t", "wg_netmanager"),
        *result["command"],
    ]
    assert result["ssd_stop"][-2:] == [supervisor, "wg_netmanager"]
    assert result["ssd_status"][-2:] == [supervisor, "wg_netmanager"]


def test_macos_starts_the_agent_with_nohup(rendered: tuple[dict[str, Any], Path]) -> None:
    result = rendered[0]["macos"]
    assert result["ssd_start"][:2] == ["/bin/sh", "-c"]
    assert "nohup " in result["ssd_start"][2]
    assert result["ssd_start"][3:] == [
        "sh",
        result["pidfile"],
        "/var/log/wg_netmanager.log",
        *result["command"],
    ]


# --- macOS's commands, run here ---------------------------------------------------------

# Python, like the agent: a shell script could not trap the SIGHUP that nohup ignores.
FAKE_AGENT = """#!{python}
import signal, sys, time
from pathlib import Path
events = Path(sys.argv[0]).parents[2] / "events"
def note(word):
    with events.open("a") as f:
        f.write(word + "\\n")
signal.signal(signal.SIGHUP, lambda *_: note("hup"))
signal.signal(signal.SIGTERM, lambda *_: (note("term"), sys.exit(0)))
note("start " + " ".join(sys.argv[1:]))
while True:
    time.sleep(1)
"""

SHELLS = {
    "dash": ["/bin/sh"] if os.path.realpath("/bin/sh").endswith("dash") else ["dash"],
    "bash": ["bash", "--posix"],
}


@pytest.fixture(scope="module")
def macos_commands(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """macOS's none-mode commands, rendered with the agent, pidfile and log in a directory here."""
    tmp = tmp_path_factory.mktemp("macos")
    agent = tmp / "venv/bin/wg_netmanager"
    agent.parent.mkdir(parents=True)
    agent.write_text(FAKE_AGENT.format(python=sys.executable))
    agent.chmod(0o755)
    (tmp / "run").mkdir()
    extra = {
        "wg_agent_venv": str(tmp / "venv"),
        "wg_agent_run_dir": str(tmp / "run"),
        "wg_agent_log_file": str(tmp / "log"),
    }
    results, _ = _render(tmp / "render", {"macos": HOSTS["macos"]}, **extra)
    return results["macos"], tmp


def _wait(condition: Any, what: str, deadline: float = 10) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not a zombie (the agent is not our child: init reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[-1][0] != "Z"


@pytest.mark.parametrize("shell", list(SHELLS))
def test_macos_commands_start_reload_and_stop_the_agent(
    macos_commands: tuple[dict[str, Any], Path], shell: str
) -> None:
    result, tmp = macos_commands
    if shutil.which(SHELLS[shell][0]) is None:
        pytest.skip(f"{shell} is not installed")
    events, pidfile = tmp / "events", Path(result["pidfile"])
    events.write_text("")

    def run(name: str) -> int:
        argv = [*SHELLS[shell], *result[name][1:]]
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode

    assert (run("ssd_status"), run("ssd_reload"), run("ssd_stop")) == (3, 0, 0)  # nothing runs yet
    assert run("ssd_start") == 0
    pid = int(pidfile.read_text())
    try:
        _wait(lambda: "start" in events.read_text(), "the agent to start")
        assert events.read_text().splitlines() == ["start " + " ".join(result["command"][1:])]
        assert run("ssd_status") == 0
        assert run("ssd_reload") == 0
        _wait(lambda: "hup" in events.read_text(), "the SIGHUP")
        assert _alive(pid)
        assert run("ssd_stop") == 0
        assert events.read_text().splitlines()[1:] == ["hup", "term"]
        assert not _alive(pid) and not pidfile.exists()
        assert run("ssd_status") == 3
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_macos_commands_leave_a_stale_pidfiles_process_alone(
    macos_commands: tuple[dict[str, Any], Path],
) -> None:
    """A pidfile from before a crash may name a pid that another process has now."""
    result, _ = macos_commands
    other = subprocess.Popen(["sleep", "30"])
    try:
        Path(result["pidfile"]).write_text(f"{other.pid}\n")
        for name, status in [("ssd_status", 3), ("ssd_reload", 0), ("ssd_stop", 0)]:
            assert (
                subprocess.run(result[name], capture_output=True, timeout=30, check=False).returncode
                == status
            )
        assert other.poll() is None, "the other process was signalled"
        assert not Path(result["pidfile"]).exists()
    finally:
        other.kill()
        other.wait()


# --- The move from an older deployment's state directory, run here ----------------------

MOVE_PLAYBOOK = """
- name: Move the agent's state from an older deployment's directory
  hosts: all
  gather_facts: false
  tasks:
    - name: Move the node's key from an older deployment's state directory
      ansible.builtin.include_tasks:
        file: "{{ tasks_dir }}/legacy_state.yml"
  handlers:
    - name: Restart wg_netmanager
      ansible.builtin.debug:
        msg: restart
"""
KEY, OTHER_KEY = (
    "aGVsbG8ga2V5IG9uZSBoZXJlIGZvciB0aGUgdGVzdHM=\n",
    "YW5vdGhlciBrZXkgZm9yIHRoZSB0ZXN0cyBoZXJlIQ==\n",
)
MARKER = '{"ifname": "wg0", "backend": "kernel"}'


def _node(root: Path, old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    """A host whose older and current state directories under ROOT hold these files."""
    for sub, files in (("old", old), ("new", new)):
        for name, text in files.items():
            path = root / sub / name
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(text)
            path.chmod(0o600)
    return {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_distribution": "OpenWrt",
        "wg_interface": "wg0",
        "wg_agent_legacy_state_dir": str(root / "old"),
        "wg_agent_state_dir": str(root / "new"),
        "wg_agent_moved_state_files": ROLE_VARS["wg_agent_moved_state_files"],
        "wg_agent_node_keys_dir": "/controller/mesh-keys",
    }


def _files(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mode & 0o777, p.read_text())
        for p in root.rglob("*")
        if p.is_file()
    }


def test_an_older_deployments_key_moves_and_the_node_keeps_its_identity(tmp_path: Path) -> None:
    hosts = {
        "move": _node(tmp_path / "move", {"wg0/private.key": KEY, "wg0.created.json": MARKER}, {}),
        "same": _node(tmp_path / "same", {"wg0/private.key": KEY}, {"wg0/private.key": KEY}),
        "conflict": _node(tmp_path / "conflict", {"wg0/private.key": KEY}, {"wg0/private.key": OTHER_KEY}),
    }
    extra = {"tasks_dir": str(COLLECTION_ROOT / "roles/agent/tasks")}
    tasks = run_playbook(tmp_path / "run1", hosts, MOVE_PLAYBOOK, extra)

    # The key and the marker (the agent adopts its interface with it) move, still 0600.
    assert _files(tmp_path / "move") == {
        "new/wg0/private.key": (0o600, KEY),
        "new/wg0.created.json": (0o600, MARKER),
    }
    assert (tmp_path / "move/new").stat().st_mode & 0o777 == 0o700
    assert set(tasks["Restart wg_netmanager"]) == {"move"}
    # The same key twice: the old copy goes, the agent needs no restart for that.
    assert _files(tmp_path / "same") == {"new/wg0/private.key": (0o600, KEY)}
    # Two keys: nothing is touched, and the operator is told where both are.
    message = tasks["Assert the node does not have two different keys"]["conflict"]["msg"]
    for words in [f"{tmp_path}/conflict/new/wg0/private.key", f"{tmp_path}/conflict/old/wg0/private.key",
                  "lost at the next boot", "/controller/mesh-keys/conflict.pub"]:  # fmt: skip
        assert words in message, message
    assert _files(tmp_path / "conflict") == {
        "old/wg0/private.key": (0o600, KEY),
        "new/wg0/private.key": (0o600, OTHER_KEY),
    }

    again = run_playbook(tmp_path / "run2", {"move": hosts["move"]}, MOVE_PLAYBOOK, extra)
    assert not [name for name, by_host in again.items() if by_host.get("move", {}).get("changed")]
    assert "Restart wg_netmanager" not in again


def test_a_check_run_moves_nothing_and_says_it_would(tmp_path: Path) -> None:
    hosts = {"check": _node(tmp_path / "check", {"wg0/private.key": KEY}, {})}
    before = _files(tmp_path / "check")
    extra = {"tasks_dir": str(COLLECTION_ROOT / "roles/agent/tasks")}
    tasks = run_playbook(tmp_path / "run", hosts, MOVE_PLAYBOOK, extra, "--check")
    assert _files(tmp_path / "check") == before
    assert not (tmp_path / "check/new").exists()
    assert tasks["Create the agent's state directory for the moved files"]["check"]["changed"]
    assert tasks["Remove them from the older state directory"]["check"]["changed"]
