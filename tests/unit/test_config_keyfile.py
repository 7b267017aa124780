"""net.yaml's sharedKeyFile / previousSharedKeyFile: the shared keys in files of their own.

The shell (configfile) reads the files, relative to net.yaml's directory, and refuses one that
others can read; core.config checks the keys as it checks inline ones. Errors are one line,
`FILE: FIELD: REASON`, exit status 2, and never show a key.
"""

from __future__ import annotations

import base64
import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest

from wg_netmanager.cli import main
from wg_netmanager.configfile import load_net
from wg_netmanager.core.config import ConfigError, NetConfig, NodeSettings

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(32, 64))).decode()
NET = """\
network:
  sharedKeyFile: {shared}
{previous}  subnet: 10.1.1.0/24
peers:
  beta: {{endPoint: "198.51.100.2:50000", wgIp: 10.1.1.2}}
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def net_file(directory: Path, shared: str = "shared.key", previous: str | None = None) -> Path:
    line = f"  previousSharedKeyFile: {previous}\n" if previous else ""
    return write(directory / "net.yaml", NET.format(shared=shared, previous=line))


def error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_net(path)
    assert KEY not in str(info.value) and OTHER not in str(info.value)
    return info.value


def test_relative_key_file_is_read_beside_net_yaml(tmp_path: Path) -> None:
    write(tmp_path / "shared.key", KEY + "\n")
    net = load_net(net_file(tmp_path))
    assert (net.shared_key, net.previous_key) == (bytes(range(32)), None)
    assert net.peer_named("beta") is not None


def test_absolute_key_files_with_a_rotation(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    write(keys / "new.key", OTHER)
    write(keys / "old.key", KEY)
    net = load_net(net_file(tmp_path, str(keys / "new.key"), str(keys / "old.key")))
    assert (net.shared_key, net.previous_key) == (bytes(range(32, 64)), bytes(range(32)))
    assert "rotating" in net.mode()


def test_inline_key_works_as_before(tmp_path: Path) -> None:
    path = write(tmp_path / "net.yaml", f'network: {{sharedKey: "{KEY}", subnet: 10.1.1.0/24}}\n')
    assert load_net(path).shared_key == bytes(range(32))


def test_missing_key_file(tmp_path: Path) -> None:
    path = net_file(tmp_path)
    err = error(path)
    assert (err.file, err.field) == (str(tmp_path / "shared.key"), "(file)")
    assert err.reason == f"cannot read: No such file or directory (named by {path} network.sharedKeyFile)"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    write(tmp_path / "shared.key", KEY, mode)
    err = error(net_file(tmp_path))
    assert (err.file, err.field) == (str(tmp_path / "shared.key"), "(file)")
    assert err.reason == f"mode {mode:04o} lets others read the shared key; chmod 600 it"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not a key!", "not valid base64"),
        (base64.b64encode(bytes(16)).decode(), "must decode to 32 bytes, got 16"),
        ("", "must decode to 32 bytes, got 0"),
        ("\xe9t\xe9", "not base64 text"),
        ("A" * 2000, "larger than 1024 bytes"),
    ],
)
def test_malformed_key_file(tmp_path: Path, content: str, reason: str) -> None:
    write(tmp_path / "shared.key", content)
    err = error(net_file(tmp_path))
    assert (err.file, err.field) == (str(tmp_path / "shared.key"), "(file)")
    assert reason in err.reason


def test_key_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "shared.key").mkdir(mode=0o700)
    err = error(net_file(tmp_path))
    assert (err.file, err.reason) == (str(tmp_path / "shared.key"), "not a regular file")


@pytest.mark.parametrize(
    ("network", "field", "reason"),
    [
        (f'sharedKey: "{KEY}", sharedKeyFile: shared.key', "network.sharedKeyFile", "not both"),
        ("sharedKeyFile: 42", "network.sharedKeyFile", "must be the path of a key file"),
        ('sharedKeyFile: ""', "network.sharedKeyFile", "must be the path of a key file"),
        (
            "sharedKeyFile: shared.key, previousSharedKeyFile: shared.key",
            "network.previousSharedKeyFile",
            "same",
        ),
        ("sharedKeyFile: shared.key, keyFile: x", "network.keyFile", "unknown field"),
    ],
)
def test_key_file_fields_in_net_yaml(tmp_path: Path, network: str, field: str, reason: str) -> None:
    write(tmp_path / "shared.key", KEY)
    path = write(tmp_path / "net.yaml", f"network: {{{network}, subnet: 10.1.1.0/24}}\n")
    err = error(path)
    assert (err.file, err.field) == (str(path), field)
    assert reason in err.reason


def test_check_config_error_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "shared.key", KEY, 0o644)
    assert main(["check-config", "-c", str(net_file(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"{tmp_path / 'shared.key'}: (file): mode 0644 lets others read the shared key; chmod 600 it\n"
    )


def test_check_config_with_a_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "shared.key", KEY)
    assert main(["check-config", "-c", str(net_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "mode: shared key" in out and KEY not in out


def test_net_yaml_without_inline_key_may_be_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "shared.key", KEY)
    path = net_file(tmp_path)
    path.chmod(0o644)
    load_net(path)
    assert "chmod 600" not in caplog.text


def test_sighup_reads_the_key_file_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's reload (io/daemon.py `_reload`) calls the CLI's: it goes through
    load_net again, so a rotation that rewrites only the key file takes effect."""
    key_file = write(tmp_path / "shared.key", KEY)
    reloads: list[Callable[[], tuple[NetConfig, NodeSettings]]] = []
    module: Any = types.ModuleType("wg_netmanager.io.daemon")

    def run(
        settings: NodeSettings, net: NetConfig, reload: Callable[[], tuple[NetConfig, NodeSettings]]
    ) -> int:
        reloads.append(reload)
        return 0

    module.run = run
    monkeypatch.setitem(sys.modules, "wg_netmanager.io.daemon", module)
    assert main(["-c", str(net_file(tmp_path)), "-n", "alice", "-a", "10.1.1.1"]) == 0
    (reload,) = reloads
    assert reload()[0].shared_key == bytes(range(32))
    write(key_file, OTHER)
    assert reload()[0].shared_key == bytes(range(32, 64))
    key_file.chmod(0o644)
    with pytest.raises(ConfigError):  # the daemon logs it and keeps the keys it has
        reload()
