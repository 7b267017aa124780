"""Choosing a backend, boringtun's command line (boringtun cannot run here: not in Debian),
the ownership marker, and interface name checks."""

from __future__ import annotations

from pathlib import Path

import pytest

import wg_netmanager.backends as backends
from wg_netmanager.backends import kernel, select_backend
from wg_netmanager.backends.base import BackendError
from wg_netmanager.backends.boringtun import BoringtunBackend
from wg_netmanager.backends.existing import ExistingBackend
from wg_netmanager.backends.marker import CreatedMarker
from wg_netmanager.backends.wggo import WireGuardGoBackend
from wg_netmanager.core import checks


def test_boringtun_command_line_and_env(tmp_path: Path):
    b = BoringtunBackend("wg0", tmp_path, binary="/opt/bin/boringtun-cli")
    assert b.command() == ["/opt/bin/boringtun-cli", "wg0"]
    env = b.environment()
    assert env["WG_SUDO"] == "1"  # stay root so the interface can still be reconfigured
    assert env["WG_LOG_FILE"] == str(tmp_path / "wg0.boringtun.log")  # not /tmp/boringtun.out
    assert set(env) == {"PATH", "WG_SUDO", "WG_LOG_LEVEL", "WG_LOG_FILE"}  # nothing inherited
    assert b.control.path == Path("/var/run/wireguard/wg0.sock")


def test_wireguard_go_command_line_and_env(tmp_path: Path):
    b = WireGuardGoBackend("wg0", tmp_path, binary="/usr/bin/wireguard-go")
    assert b.command() == ["/usr/bin/wireguard-go", "wg0"]
    assert set(b.environment()) == {"PATH", "LOG_LEVEL"}


def test_boringtun_missing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(BoringtunBackend, "find_binary", classmethod(lambda cls: None))
    with pytest.raises(BackendError, match="boringtun-cli, boringtun"):
        BoringtunBackend("wg0", tmp_path).command()


BAD_NAMES = ["", "a" * 16, "ä" * 8, "wg/0", "wg:0", "wg 0", "wg\x01", ".."]  # "ä" is 2 bytes


@pytest.mark.parametrize("cls", [WireGuardGoBackend, BoringtunBackend, kernel.KernelBackend, ExistingBackend])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_interface_names(tmp_path: Path, cls: type, name: str):
    with pytest.raises(BackendError, match="invalid interface name") as info:
        cls(name, tmp_path)
    assert str(info.value) == checks.interface_problem(name)  # the same words as config's


@pytest.mark.parametrize("name", BAD_NAMES)
def test_config_refuses_the_same_interface_names(name: str):
    with pytest.raises(checks.ConfigError) as info:
        checks.interface(name, "peer.yaml", "wgInterface")
    assert info.value.reason == checks.interface_problem(name)


def test_longest_interface_name_is_fine(tmp_path: Path):
    assert WireGuardGoBackend("a" * 15, tmp_path).ifname == checks.interface("a" * 15, "f", "x")


@pytest.fixture
def fake_world(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    world = {"kernel": False, "wireguard-go": False, "boringtun": False}
    monkeypatch.setattr(kernel, "available", lambda: world["kernel"])
    monkeypatch.setattr(
        WireGuardGoBackend, "find_binary", classmethod(lambda c: "/x" if world[c.name] else None)
    )
    return world


@pytest.mark.parametrize(
    "have, expected",
    [
        ({"kernel", "wireguard-go", "boringtun"}, "kernel"),
        ({"wireguard-go", "boringtun"}, "wireguard-go"),
        ({"boringtun"}, "boringtun"),
    ],
)
def test_auto_prefers_kernel_then_wireguard_go_then_boringtun(fake_world, tmp_path, have, expected):
    fake_world.update({k: k in have for k in fake_world})
    assert select_backend("auto", "wg0", tmp_path).name == expected


def test_auto_with_nothing_installed(fake_world, tmp_path):
    with pytest.raises(BackendError, match="no WireGuard implementation found"):
        select_backend("auto", "wg0", tmp_path)


@pytest.mark.parametrize("kind", ["kernel", "wireguard-go", "boringtun"])
def test_explicit_kind_not_available(fake_world, tmp_path, kind):
    with pytest.raises(BackendError, match=f"backend {kind}:"):
        select_backend(kind, "wg0", tmp_path)


def test_existing_needs_nothing_installed(fake_world, tmp_path):
    assert isinstance(select_backend("existing", "wg0", tmp_path), ExistingBackend)


@pytest.mark.parametrize("kind", checks.BACKENDS)
def test_every_backend_config_accepts_is_selectable(fake_world, tmp_path, kind):
    fake_world.update(dict.fromkeys(fake_world, True))
    select_backend(kind, "wg0", tmp_path)


def test_unknown_kind(tmp_path):
    with pytest.raises(BackendError, match="unknown backend 'wg-quick'"):
        select_backend("wg-quick", "wg0", tmp_path)
    assert set(backends.KINDS) == {"auto", "kernel", "wireguard-go", "boringtun", "existing"}


def test_marker_is_per_interface_and_backend(tmp_path: Path):
    m = CreatedMarker(tmp_path / "state", "wg0", "wireguard-go")
    assert not m.present()
    m.write()
    assert m.present()
    assert (m.path.stat().st_mode & 0o777) == 0o600
    assert not CreatedMarker(tmp_path / "state", "wg1", "wireguard-go").present()
    assert not CreatedMarker(tmp_path / "state", "wg0", "kernel").present()
    m.clear()
    assert not m.present()
