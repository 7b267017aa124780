"""The wg_netmanager command: exit codes, one-line errors, daemon hand-off, subcommands."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from wg_netmanager import __version__
from wg_netmanager.backends.base import BackendError
from wg_netmanager.cli import main
from wg_netmanager.core.config import NetConfig, NodeSettings
from wg_netmanager.io.status import start_status_server, stop_status_server

KEY = base64.b64encode(bytes(range(32))).decode()  # net_yaml's (conftest.py)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_run_hands_settings_to_daemon(net_yaml: Path, tmp_path: Path, fake_daemon: list[Any]) -> None:
    rc = main(
        [
            *("-c", str(net_yaml), "-n", "alice", "-a", "10.1.1.1", "-i", "wg3"),
            *("-w", "40000", "-b", "wireguard-go", "--state-dir", str(tmp_path / "s")),
            *("--run-dir", str(tmp_path / "r")),
        ]
    )
    assert rc == 0
    [(settings, net)] = fake_daemon
    assert settings == NodeSettings(
        name="alice",
        wg_ip=IPv4Address("10.1.1.1"),
        interface="wg3",
        existing_interface=False,
        wg_port=40000,
        admin_port=40001,
        backend="wireguard-go",
        state_dir=tmp_path / "s",
        run_dir=tmp_path / "r",
        verbose=0,
    )
    assert net.peer_named("beta") is not None


def test_explicit_run_and_peer_file(net_yaml: Path, tmp_path: Path, fake_daemon: list[Any]) -> None:
    peer = tmp_path / "peer.yaml"
    peer.write_text("name: alice\nwgIp: 10.1.1.1\nwgPort: 41000\nexistingInterface: true\n")
    assert main(["run", "-c", str(net_yaml), "-p", str(peer), "-u", "41005"]) == 0
    settings = fake_daemon[0][0]
    assert (settings.name, settings.wg_port, settings.admin_port) == ("alice", 41000, 41005)
    assert (settings.existing_interface, settings.backend) == (True, "existing")


def test_daemon_exit_status_is_passed_on(net_yaml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("wg_netmanager.io.daemon")
    module.run = lambda settings, net, reload: 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wg_netmanager.io.daemon", module)
    assert main(["-c", str(net_yaml), "-n", "alice", "-a", "10.1.1.1"]) == 3


def test_backend_error_is_one_line_exit_1(
    net_yaml: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = types.ModuleType("wg_netmanager.io.daemon")

    def run(settings: NodeSettings, net: NetConfig, reload: object) -> int:
        raise BackendError("wg0: wireguard-go not found")

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wg_netmanager.io.daemon", module)
    assert main(["-c", str(net_yaml), "-n", "alice", "-a", "10.1.1.1"]) == 1
    assert one_error_line(capsys) == "wg_netmanager: wg0: wireguard-go not found"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "alice"], "command line: --wg-ip: missing"),
        (["-n", "alice", "-a", "10.9.9.9"], "command line: --wg-ip: 10.9.9.9 is outside"),
        (["-n", "alice", "-a", "10.1.1.1", "-b", "nope"], "command line: --backend: unknown"),
        (["-n", "alice", "-a", "10.1.1.1", "-w", "0"], "command line: --wg-port: port 0"),
        (["-n", "bad name", "-a", "10.1.1.1"], "command line: --name: invalid name"),
    ],
)
def test_config_errors_are_one_line_exit_2(
    net_yaml: Path, fake_daemon: list[Any], capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(["-c", str(net_yaml), *args]) == 2
    assert one_error_line(capsys).startswith(expected)
    assert fake_daemon == []


def test_bad_net_yaml_is_one_line_exit_2(
    net_yaml: Path, fake_daemon: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = net_yaml
    path.write_text(net_yaml.read_text().replace("10.1.1.0/24", "10.1.1.0/31"))
    assert main(["-c", str(path), "-n", "alice", "-a", "10.1.1.1"]) == 2
    assert one_error_line(capsys).startswith(f"{path}: network.subnet: 10.1.1.0/31 is too small")


def test_missing_net_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(tmp_path / "nope.yaml"), "-n", "a", "-a", "10.1.1.1"]) == 2
    assert "(file): cannot read" in one_error_line(capsys)


def test_usage_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["-w", "many"])
    assert info.value.code == 2
    assert "invalid int value: 'many'" in one_error_line(capsys)


def test_help_explains_options_and_files(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for text in ("--config", "--peer-config", "--wg-ip", "--existing-interface", "--backend"):
        assert text in out
    for text in ("/etc/wg_netmanager/net.yaml", "/var/lib/wg_netmanager", "private.key"):
        assert text in out
    for command in ("status", "genkey", "check-config"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"wg_netmanager {__version__}"


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wg_netmanager", "--version"], capture_output=True, text=True, timeout=30
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, f"wg_netmanager {__version__}")


def test_genkey(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["genkey"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["genkey"]) == 0
    second = capsys.readouterr().out.strip()
    assert len(base64.b64decode(first, validate=True)) == 32
    assert first != second


@pytest.mark.parametrize(
    ("flag", "level"), [([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG)]
)
def test_verbosity(net_yaml: Path, fake_daemon: list[Any], flag: list[str], level: int) -> None:
    root = logging.getLogger()
    before = root.level
    try:
        assert main(["-c", str(net_yaml), "-n", "alice", "-a", "10.1.1.1", *flag]) == 0
        assert root.level == level
        assert fake_daemon[0][0].verbose == (len(flag[0]) - 1 if flag else 0)
    finally:
        root.setLevel(before)


# --- check-config ---


def test_check_config_net_only(net_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(net_yaml)]) == 0
    out = capsys.readouterr().out
    assert "subnet 10.1.1.0/24, 1 static peer(s)" in out
    assert "beta: 10.1.1.2 at 198.51.100.2:50000, admin port 50001" in out
    assert KEY not in out


def test_check_config_node(net_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(net_yaml), "-n", "beta"]) == 0
    out = capsys.readouterr().out
    assert "node beta (static): 10.1.1.2 on wg0, WireGuard port 50000, admin port 50001" in out


def test_check_config_subnet_gateway(net_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check-config", "-c", str(net_yaml), "-n", "delta", "-a", "10.1.1.4"]
    assert main([*args, "--subnet", "192.168.50.0/24", "--subnet", "172.16.0.0/12"]) == 0
    assert "  gateway for: 192.168.50.0/24, 172.16.0.0/12\n" in capsys.readouterr().out
    assert main([*args, "--subnet", "192.168.50.0/24", "--masquerade"]) == 0
    assert "  gateway for: 192.168.50.0/24 (masquerading)\n" in capsys.readouterr().out
    assert main([*args, "--subnet", "192.168.50.1/24"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "command line: --subnet: host bits set in '192.168.50.1/24' (did you mean 192.168.50.0/24?)\n"
    )


def test_check_config_error(net_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = net_yaml
    path.write_text(net_yaml.read_text().replace("198.51.100.2:50000", "198.51.100.2"))
    assert main(["check-config", "-c", str(path)]) == 2
    assert one_error_line(capsys) == (f"{path}: peers.beta.endPoint: expected host:port, got '198.51.100.2'")


# --- status ---


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A status server on its own loop in a thread, like a running agent."""
    doc = {
        "name": "alice",
        "wgIp": "10.1.1.1",
        "interface": "wg0",
        "converged": True,
        "peers": [{"name": "beta", "wgIp": "10.1.1.2", "path": "static", "lastHandshake": 0}],
    }
    run_dir = tmp_path / "run"
    path = run_dir / "wg0.sock"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start_status_server(path, lambda: doc), loop)
    srv = server.result(timeout=5)
    try:
        yield run_dir, doc
    finally:
        asyncio.run_coroutine_threadsafe(stop_status_server(srv, path), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_status_table(agent: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = agent
    assert main(["status", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("node: alice  10.1.1.1  wg0  converged: yes\n")
    assert "beta" in out and "never" in out


def test_status_json(agent: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, doc = agent
    assert main(["status", "--json", "-i", "wg0", "--run-dir", str(run_dir)]) == 0
    assert json.loads(capsys.readouterr().out) == doc


def test_status_agent_not_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--run-dir", str(tmp_path), "-i", "wg9"]) == 1
    line = one_error_line(capsys)
    assert line.startswith("wg_netmanager: ") and "is the agent running" in line


def test_status_bad_interface(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--run-dir", str(tmp_path), "-i", "../x"]) == 2
    assert one_error_line(capsys).startswith("command line: --interface:")
