"""The original Rust wg_netmanager's command lines, and `install` (a systemd unit)."""

from __future__ import annotations

import configparser
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
from test_cli import one_error_line
from test_config_original import ORIGINAL_NET, ORIGINAL_PEER

from wg_netmanager import install
from wg_netmanager.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def original_net(tmp_path: Path) -> Path:
    path = tmp_path / "network.yaml"
    path.write_text(ORIGINAL_NET)
    path.chmod(0o600)
    return path


def test_positional_form(
    original_net: Path, fake_daemon: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(original_net), "wg0", "10.1.1.16", "bob"]) == 0
    [(settings, net)] = fake_daemon
    assert (settings.interface, str(settings.wg_ip), settings.name) == ("wg0", "10.1.1.16", "bob")
    # the original's own example: one warning line naming file and field, then it runs
    assert (
        capsys.readouterr().err
        == f"{original_net}: network.subnet: warning: host bits set in '10.1.1.0/8', using 10.0.0.0/8\n"
    )


def test_dash_options_form_makes_the_static_node(original_net: Path, fake_daemon: list[Any]) -> None:
    assert main(["-c", str(original_net), "-i", "wg0", "-a", "10.1.1.1", "-n", "alice"]) == 0
    settings, net = fake_daemon[0]
    assert (settings.name, settings.wg_port, settings.admin_port) == ("alice", 50000, 55555)
    assert net.peer_at(settings.wg_ip) is net.peers[0]


def test_original_long_options(original_net: Path, tmp_path: Path, fake_daemon: list[Any]) -> None:
    peer = tmp_path / "peer.yaml"
    peer.write_text(ORIGINAL_PEER)
    argv = ["--network_config", str(original_net), "--peer_config", str(peer), "--existing-wg"]
    argv += ["--wireguard-interface", "wg5", "--wireguard-address", "10.1.1.1", "--wireguard-port", "50000"]
    argv += ["--admin-port", "55555", "--name", "alice", "-H"]
    assert main(argv) == 0
    settings = fake_daemon[0][0]
    assert (settings.interface, settings.existing_interface, settings.backend) == ("wg5", True, "existing")


def test_options_between_positionals(original_net: Path, fake_daemon: list[Any]) -> None:
    assert main(["wg0", "-c", str(original_net), "10.1.1.16", "-v", "bob"]) == 0
    assert fake_daemon[0][0].name == "bob"


def test_default_files_are_the_originals(no_etc: Path, fake_daemon: list[Any]) -> None:
    (no_etc / "network.yaml").write_text(ORIGINAL_NET)
    (no_etc / "peer.yaml").write_text(ORIGINAL_PEER)
    assert main([]) == 0  # the original's unit ran it without options
    settings, net = fake_daemon[0]
    assert (settings.name, net.source) == ("alice", str(no_etc / "network.yaml"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wg0", "10.1.1.16"], "expected INTERFACE WG_IP NAME (3 words) or none, got 2"),
        (["wg0", "10.1.1.16", "bob", "x"], "got 4"),
        (["-i", "wg1", "wg0", "10.1.1.16", "bob"], "INTERFACE 'wg0' differs from -i 'wg1'"),
        (["-n", "carol", "wg0", "10.1.1.16", "bob"], "NAME 'bob' differs from -n 'carol'"),
    ],
)
def test_positional_mistakes(
    original_net: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["-c", str(original_net), *argv])
    assert info.value.code == 2
    assert message in one_error_line(capsys)


def test_positional_values_are_checked(original_net: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(original_net), "wg0", "172.16.0.1", "bob"]) == 2
    assert "command line: --wg-ip: 172.16.0.1 is outside the subnet 10.0.0.0/8" in capsys.readouterr().err


def test_check_config_positional(original_net: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(original_net), "wg0", "10.1.1.1", "alice"]) == 0
    out = capsys.readouterr().out
    assert "static-10-1-1-1: 10.1.1.1 at 192.168.1.70:50000, admin port 55555" in out
    assert "node alice (static): 10.1.1.1 on wg0" in out


def test_static_peer_option(net_yaml: Path, fake_daemon: list[Any]) -> None:
    nine = "endPoint=198.51.100.9:50000,wgIp=10.1.1.9,name=nine"
    eight = "endPoint=198.51.100.8:50000,wgIp=10.1.1.8"
    assert (
        main(["-c", str(net_yaml), "-n", "alice", "-a", "10.1.1.1", "-s", nine, "--static-peer", eight]) == 0
    )
    net = fake_daemon[0][1]
    assert [p.name for p in net.peers] == ["beta", "nine", "static-10-1-1-8"]


def test_bad_static_peer_option_is_one_line(net_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "-c",
                str(net_yaml),
                "-n",
                "alice",
                "-a",
                "10.1.1.1",
                "-s",
                "endPoint=198.51.100.2:50000,wgIp=10.1.1.9",
            ]
        )
        == 2
    )
    assert (
        one_error_line(capsys)
        == "command line: --static-peer[0].endPoint: 198.51.100.2:50000 is already peer beta's"
    )


def test_dash_capital_o_prints_the_configuration(
    original_net: Path, fake_daemon: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(original_net), "-O", "wg0", "10.1.1.16", "bob"]) == 0
    assert fake_daemon == []
    assert "node bob (dynamic): 10.1.1.16 on wg0" in capsys.readouterr().out


def test_dash_l_logs_to_name_log(
    original_net: Path, tmp_path: Path, fake_daemon: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        assert main(["-c", str(original_net), "-l", "wg0", "10.1.1.16", "bob"]) == 0
        logging.getLogger("wg_netmanager.test").warning("hello file")
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
                h.close()
    assert "hello file" in (tmp_path / "bob.log").read_text()


def test_dash_t_runs_without_a_tui(
    original_net: Path, fake_daemon: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["-c", str(original_net), "-t", "wg0", "10.1.1.16", "bob"]) == 0
    assert fake_daemon and "the text UI is not built" in caplog.text


def test_help_shows_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "-c net.yaml -i wg0 -a 10.1.1.1 -n alice" in out
    assert "-c net.yaml wg0 10.1.1.16 bob" in out
    assert "INTERFACE WG_IP NAME" in out and "--static-peer" in out and "install" in out


# --- install ---


def unit_of(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_install_prints_a_hardened_unit(original_net: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--print", "-c", str(original_net), "wg0", "10.1.1.16", "bob"]) == 0
    text = capsys.readouterr().out
    unit = unit_of(text)
    exec_start = unit["Service"]["ExecStart"].split()
    assert exec_start[-8:] == ["-c", str(original_net.resolve()), "-i", "wg0", "-a", "10.1.1.16", "-n", "bob"]
    assert unit["Unit"]["ConditionPathExists"] == str(original_net.resolve())
    assert "sharedKey" not in text and "YDUBM6" not in text  # the key stays in net.yaml


def role_unit() -> str:
    """The role's unit template, rendered for a node with the agent's own directories (with
    stand-ins for the two Ansible filters it uses)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.tests["match"] = lambda value, pattern: re.match(pattern, value) is not None
    env.filters["regex_replace"] = lambda value, pattern, repl: re.sub(pattern, repl, value)
    template = env.from_string((ROOT / "roles/agent/templates/wg_netmanager.service.j2").read_text())
    return template.render(
        ansible_managed="managed",
        wg_interface="wg0",
        wg_agent_command=["/opt/wg_netmanager/venv/bin/wg_netmanager"],
        wg_agent_state_dir="/var/lib/wg_netmanager",
        wg_agent_run_dir="/run/wg_netmanager",
    )


def test_install_hardening_matches_the_ansible_role(
    original_net: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One hardening for both ways of installing: the role's template is the reference."""
    assert main(["install", "--print", "-c", str(original_net), "wg0", "10.1.1.16", "bob"]) == 0
    ours = unit_of(capsys.readouterr().out)["Service"]
    role = unit_of(role_unit())["Service"]
    assert {k: v for k, v in ours.items() if k != "ExecStart"} == {
        k: v for k, v in role.items() if k != "ExecStart"
    }


def test_install_writes_and_is_idempotent(
    original_net: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(install, "SYSTEMD_RUNNING", tmp_path / "no-systemd")
    units = tmp_path / "units"
    argv = ["-c", str(original_net), "wg1", "10.1.1.16", "bob", "install", "--unit-dir", str(units)]
    assert main(["install", *argv[:5], "--unit-dir", str(units)]) == 0
    path = units / "wg_netmanager-wg1.service"
    assert capsys.readouterr().out.startswith(f"{path}: written\n")
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    first = path.read_text()
    assert main(["install", *argv[:5], "--unit-dir", str(units)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: unchanged\n")
    assert path.read_text() == first


def test_trailing_install_word_is_the_subcommand(
    original_net: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_daemon: list[Any]
) -> None:
    monkeypatch.setattr(install, "UNIT_DIR", tmp_path)
    monkeypatch.setattr(install, "SYSTEMD_RUNNING", tmp_path / "no-systemd")
    assert main(["-c", str(original_net), "-i", "wg0", "-a", "10.1.1.16", "-n", "bob", "install"]) == 0
    assert fake_daemon == [] and (tmp_path / "wg_netmanager.service").exists()


def test_install_refuses_a_bad_configuration(
    original_net: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["install", "-c", str(original_net), "--unit-dir", str(tmp_path), "wg0", "172.16.0.1", "bob"])
        == 2
    )
    assert "--wg-ip: 172.16.0.1 is outside the subnet" in capsys.readouterr().err
    assert list(tmp_path.glob("*.service")) == []


def test_install_quotes_for_systemd() -> None:
    assert install.quote("/etc/wg net/net.yaml") == '"/etc/wg net/net.yaml"'
    assert install.quote("50%") == "50%%" and install.quote("$HOME") == "$$HOME"
    assert install.quote('a"b') == '"a\\"b"'


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_installed_unit_passes_systemd_analyze_verify(
    original_net: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--print", "-c", str(original_net), "wg0", "10.1.1.16", "bob"]) == 0
    path = tmp_path / "wg_netmanager.service"
    path.write_text(capsys.readouterr().out)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    problems = [line for line in proc.stderr.splitlines() if str(path) in line]
    assert proc.returncode == 0 and problems == [], proc.stderr
    assert sys.executable in path.read_text() or "wg_netmanager" in path.read_text()


@pytest.mark.skipif(shutil.which("sudo") is None or os.geteuid() != 0, reason="needs sudo, as root")
def test_positional_form_behind_sudo(original_net: Path) -> None:
    """`sudo wg_netmanager -c network.yaml wg0 IP NAME`: sudo's reset environment and
    secure_path must not matter."""
    script = Path(sys.executable).with_name("wg_netmanager")
    proc = subprocess.run(
        ["sudo", "-n", str(script), "check-config", "-c", str(original_net), "wg0", "10.1.1.16", "bob"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "node bob (dynamic): 10.1.1.16 on wg0" in proc.stdout
