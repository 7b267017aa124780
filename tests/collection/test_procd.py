"""The OpenWrt init script, run: its functions under stand-ins for rc.common and procd.sh.

A mock, not OpenWrt: there is no procd here. The role renders wg_netmanager.procd.j2 for a
fake OpenWrt host; the test runs it as OpenWrt would (`/etc/rc.common SCRIPT ACTION`) with a
busybox or dash shell, an rc.common that calls the script's functions in the order OpenWrt's
does, and a procd.sh whose functions write their arguments to a log instead of sending them
to procd. `mkdir` on PATH is a stand-in too, so nothing outside the test's directory is made.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from collection_paths import COLLECTION_ROOT
from os_hosts import facts, run_playbook

pytestmark = pytest.mark.collection

HOSTS = {
    "openwrt": facts("OpenWrt", "OpenWrt", "openwrt_init"),
    # An argument with a space must reach procd as one.
    "openwrt-args": facts(
        "OpenWrt",
        "OpenWrt",
        "openwrt_init",
        wg_agent_extra_args=["-v", "--cert", "/etc/wg_netmanager/node one.crt"],
    ),
}

PLAYBOOK = """
- name: Render the procd script for fake OpenWrt hosts
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the agent role's preflight
      ansible.builtin.include_role:
        name: wg_netmanager.mesh.agent
        tasks_from: preflight.yml
        public: true
    - name: Report the command line
      ansible.builtin.debug:
        msg: "{{ wg_agent_command }}"
    - name: Render the procd script
      ansible.builtin.template:
        src: "{{ templates }}/wg_netmanager.procd.j2"
        dest: "{{ out }}/{{ inventory_hostname }}"
        mode: "0755"
"""

# OpenWrt's rc.common, reduced to what a procd script uses (package/base-files/files/etc/
# rc.common): source the script, then procd.sh; start opens the service, runs start_service
# and closes it (procd.sh's close runs service_triggers); stop runs stop_service then
# procd_kill; reload runs reload_service if the script has one, else start; restart is stop
# then start; enable links S<START> and K<STOP> in rc.d.
RC_COMMON = r"""#!/bin/sh
initscript=$1
action=${2:-help}
shift 2
start_service() { return 0; }
stop_service() { return 0; }
service_triggers() { return 0; }
. "$initscript"
[ -n "$USE_PROCD" ] || { echo "not a procd script" >&2; exit 1; }
. "$IPKG_INSTROOT/lib/functions/procd.sh"
name=$(basename "$initscript")
start() { procd_open_service "$name" "$initscript"; start_service "$@"; procd_close_service set; }
stop() { stop_service "$@"; procd_kill "$name" "$1"; }
reload() { if type reload_service >/dev/null 2>&1; then reload_service "$@"; else start "$@"; fi; }
restart() { stop "$@"; start "$@"; }
enable() {
	ln -sf "../init.d/$name" "$IPKG_INSTROOT/etc/rc.d/S$START$name" &&
	ln -sf "../init.d/$name" "$IPKG_INSTROOT/etc/rc.d/K$STOP$name"
}
case "$action" in
start|stop|reload|restart|enable) "$action" "$@" ;;
*) echo "rc.common: no action $action" >&2; exit 1 ;;
esac
"""

# procd.sh's public functions, each writing one line to $PROCD_LOG: its name and arguments,
# tab-separated. procd_close_service runs service_triggers as the real one does, and
# procd_send_signal logs the number its signal name stands for (`kill -l NAME`, as procd.sh
# finds it: busybox ash can, dash cannot and logs "?").
PROCD_SH = r"""
_record() {
	printf '%s' "$1" >>"$PROCD_LOG"; shift
	for a in "$@"; do printf '\t%s' "$a" >>"$PROCD_LOG"; done
	printf '\n' >>"$PROCD_LOG"
}
for f in procd_open_service procd_open_instance procd_close_instance procd_set_param \
	procd_append_param procd_kill procd_running procd_lock procd_add_raw_trigger \
	procd_add_config_trigger procd_add_interface_trigger procd_add_reload_trigger \
	procd_add_reload_interface_trigger procd_add_reload_data_trigger \
	procd_add_reload_mount_trigger procd_add_restart_mount_trigger procd_open_trigger \
	procd_close_trigger procd_add_validation procd_add_jail procd_add_jail_mount; do
	eval "$f() { _record $f \"\$@\"; }"
done
procd_close_service() { service_triggers; _record procd_close_service "$@"; }
procd_send_signal() {
	_record procd_send_signal "$@"
	_record signal-number "$(kill -l "$3" 2>/dev/null || echo '?')"
}
"""

MKDIR = r"""#!/bin/sh
. "$IPKG_INSTROOT/lib/functions/procd.sh"
_record mkdir "$@"
"""

SHELLS = {"busybox": ["busybox", "sh"], "dash": ["dash"]}


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """host -> {'script': rendered text, 'command': the role's wg_agent_command}."""
    tmp = tmp_path_factory.mktemp("procd")
    out = tmp / "out"
    out.mkdir()
    tasks = run_playbook(
        tmp, HOSTS, PLAYBOOK, {"out": str(out), "templates": str(COLLECTION_ROOT / "roles/agent/templates")}
    )
    failed = {h: r for t in tasks.values() for h, r in t.items() if r.get("failed")}
    assert not failed, json.dumps(failed, indent=1)
    return {
        host: {"script": (out / host).read_text(), "command": tasks["Report the command line"][host]["msg"]}
        for host in HOSTS
    }


@pytest.fixture(params=list(SHELLS))
def shell(request: pytest.FixtureRequest) -> list[str]:
    argv = SHELLS[request.param]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed (Debian package {request.param})")
    return argv


class FakeOpenWrt:
    """A root directory with rc.common, procd.sh, the init script and a `mkdir` stand-in."""

    def __init__(self, root: Path, script: str, shell: list[str]) -> None:
        self.root, self.shell = root, shell
        for path, text, mode in [
            ("etc/rc.common", RC_COMMON, 0o755),
            ("lib/functions/procd.sh", PROCD_SH, 0o644),
            ("etc/init.d/wg_netmanager", script, 0o755),
            ("bin/mkdir", MKDIR, 0o755),
        ]:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
            (root / path).chmod(mode)
        (root / "etc/rc.d").mkdir()
        self.initscript = str(root / "etc/init.d/wg_netmanager")
        self.log = root / "procd.log"

    def run(self, action: str) -> list[tuple[str, ...]]:
        """Runs `/etc/init.d/wg_netmanager ACTION`; returns the calls it made, in order."""
        self.log.write_text("")
        env = {
            "PATH": f"{self.root}/bin:/usr/bin:/bin",
            "IPKG_INSTROOT": str(self.root),
            "PROCD_LOG": str(self.log),
        }
        proc = subprocess.run(
            [*self.shell, str(self.root / "etc/rc.common"), self.initscript, action],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return [tuple(line.split("\t")) for line in self.log.read_text().splitlines()]


@pytest.fixture
def openwrt(scripts: dict[str, Any], shell: list[str], tmp_path: Path) -> FakeOpenWrt:
    return FakeOpenWrt(tmp_path, scripts["openwrt"]["script"], shell)


AGENT = (
    "/opt/wg_netmanager/venv/bin/wg_netmanager",
    *("-c", "/etc/wg_netmanager/net.yaml", "-p", "/etc/wg_netmanager/peer.yaml"),
    *("--state-dir", "/etc/wg_netmanager/state"),
)


def test_the_script_runs_under_rc_common(scripts: dict[str, Any]) -> None:
    assert scripts["openwrt"]["script"].startswith("#!/bin/sh /etc/rc.common\n")


def test_start_registers_one_respawning_instance(openwrt: FakeOpenWrt, scripts: dict[str, Any]) -> None:
    assert openwrt.run("start") == [
        ("procd_open_service", "wg_netmanager", openwrt.initscript),
        # The key's directory under /etc survives a reboot; the socket's is made each boot.
        ("mkdir", "-p", "-m", "0700", "/run/wg_netmanager", "/etc/wg_netmanager/state"),
        ("procd_open_instance",),
        ("procd_set_param", "command", *AGENT),
        # threshold 3600 s, 2 s between restarts, no limit (0)
        ("procd_set_param", "respawn", "3600", "2", "0"),
        ("procd_set_param", "stdout", "1"),
        ("procd_set_param", "stderr", "1"),
        ("procd_close_instance",),
        # No triggers and no `file` param: procd never restarts the agent for a changed
        # net.yaml; the role reloads it (SIGHUP) or restarts it itself.
        ("procd_close_service", "set"),
    ]
    assert list(AGENT) == scripts["openwrt"]["command"]


def test_reload_sends_sighup_and_nothing_else(openwrt: FakeOpenWrt) -> None:
    number = str(int(signal.SIGHUP)) if openwrt.shell[0] == "busybox" else "?"
    assert openwrt.run("reload") == [
        ("procd_send_signal", "wg_netmanager", "*", "HUP"),
        ("signal-number", number),
    ]


def test_stop_and_restart(openwrt: FakeOpenWrt) -> None:
    assert openwrt.run("stop") == [("procd_kill", "wg_netmanager", "")]
    calls = openwrt.run("restart")
    assert calls[0] == ("procd_kill", "wg_netmanager", "")
    assert calls[1] == ("procd_open_service", "wg_netmanager", openwrt.initscript)
    assert calls[-1] == ("procd_close_service", "set")


def test_enable_starts_late_and_stops_early(openwrt: FakeOpenWrt) -> None:
    """After the network (S95), and stopped before it at shutdown (K10)."""
    assert openwrt.run("enable") == []
    links = sorted(p.name for p in (openwrt.root / "etc/rc.d").iterdir())
    assert links == ["K10wg_netmanager", "S95wg_netmanager"]
    assert (openwrt.root / "etc/rc.d/S95wg_netmanager").readlink() == Path("../init.d/wg_netmanager")


def test_an_argument_with_a_space_stays_one(
    scripts: dict[str, Any], shell: list[str], tmp_path: Path
) -> None:
    node = FakeOpenWrt(tmp_path, scripts["openwrt-args"]["script"], shell)
    command = next(c for c in node.run("start") if c[:2] == ("procd_set_param", "command"))
    assert command[2:] == (*AGENT, "-v", "--cert", "/etc/wg_netmanager/node one.crt")
    assert list(command[2:]) == scripts["openwrt-args"]["command"]
