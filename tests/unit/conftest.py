"""Shared fixtures. Unit tests never read this machine's /etc/wg_netmanager (the CLI reads
peer.yaml there without being told, as the original did)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from wg_netmanager import cli, configfile
from wg_netmanager.core.config import NetConfig, NodeSettings

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31
NET = f"""\
network:
  sharedKey: "{KEY}"
  subnet: 10.1.1.0/24
peers:
  beta:
    endPoint: 198.51.100.2:50000
    wgIp: 10.1.1.2
"""


@pytest.fixture(autouse=True)
def no_etc(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    etc = tmp_path_factory.mktemp("etc")
    monkeypatch.setattr(cli, "default_net_file", lambda: configfile.default_net_file(etc))
    monkeypatch.setattr(cli, "default_peer_file", lambda: configfile.default_peer_file(etc))
    return etc


@pytest.fixture
def net_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text(NET)
    path.chmod(0o600)
    return path


@pytest.fixture
def fake_daemon(monkeypatch: pytest.MonkeyPatch) -> list[tuple[NodeSettings, NetConfig]]:
    calls: list[tuple[NodeSettings, NetConfig]] = []
    module = types.ModuleType("wg_netmanager.io.daemon")

    def run(
        settings: NodeSettings, net: NetConfig, reload: Callable[[], tuple[NetConfig, NodeSettings]]
    ) -> int:
        assert reload() == (net, settings)  # SIGHUP reads the same files again
        calls.append((settings, net))
        return 0

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wg_netmanager.io.daemon", module)
    return calls
