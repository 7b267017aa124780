"""A subnet gateway's LAN side (backends/gateway.py), with netlink and nft played by hand;
tests/lab/test_subnets.py runs it for real."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from wg_netmanager.backends import gateway as g
from wg_netmanager.backends import nft
from wg_netmanager.backends.base import BackendError

LAN = (IPv4Network("192.168.50.0/24"),)


class Host:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.flags = {"eth1": False, "eth2": True}
        self.on: dict[IPv4Network, str] = {IPv4Network("192.168.50.0/24"): "eth1"}
        self.scripts: list[str] = []
        self.nft_fails = False
        monkeypatch.setattr(g.netlink, "interfaces_on", self.interfaces_on)
        monkeypatch.setattr(g.netlink, "forwarding", lambda name: self.flags[name])
        monkeypatch.setattr(g.netlink, "set_forwarding", self.set_forwarding)
        monkeypatch.setattr(g.Gateway, "_nft", lambda _, script: self.nft(script))

    def interfaces_on(self, subnets: tuple[IPv4Network, ...], exclude: str) -> set[str]:
        return {self.on[s] for s in subnets if s in self.on}

    def set_forwarding(self, name: str, on: bool) -> None:
        self.flags[name] = on

    def nft(self, script: str) -> None:
        if self.nft_fails:
            raise BackendError("nft: Operation not permitted")
        self.scripts.append(script)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    return Host(monkeypatch)


def test_the_lan_interface_forwards_while_announced_and_is_put_back(host: Host) -> None:
    gw = g.Gateway("wg0")
    gw.sync(LAN, masquerade=False)
    assert host.flags == {"eth1": True, "eth2": True}
    assert host.scripts == []
    gw.sync((), masquerade=False)
    assert host.flags == {"eth1": False, "eth2": True}


def test_a_flag_that_was_on_stays_on(host: Host) -> None:
    host.on = {LAN[0]: "eth2"}
    gw = g.Gateway("wg0")
    gw.sync(LAN, masquerade=False)
    gw.close()
    assert host.flags["eth2"] is True


def test_masquerading_is_one_table_written_and_removed_whole(host: Host) -> None:
    gw = g.Gateway("wg0")
    gw.sync(LAN, masquerade=True)
    gw.sync(LAN, masquerade=True)  # unchanged: nft is not run again
    [script] = host.scripts
    assert script.startswith("table ip wg_netmanager_wg0 {}\ndelete table ip wg_netmanager_wg0\n")
    assert 'iifname "wg0" oifname != "wg0" ip daddr { 192.168.50.0/24 } masquerade' in script
    gw.close()
    assert host.scripts[1] == "table ip wg_netmanager_wg0 {}\ndelete table ip wg_netmanager_wg0\n"
    assert host.flags["eth1"] is False


def test_a_failing_nft_is_an_error_and_tried_again(host: Host) -> None:
    gw = g.Gateway("wg0")
    host.nft_fails = True
    with pytest.raises(BackendError, match="Operation not permitted"):
        gw.sync(LAN, masquerade=True)
    host.nft_fails = False
    gw.sync(LAN, masquerade=True)
    assert len(host.scripts) == 1


def test_without_nft(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nft.shutil, "which", lambda _: None)
    with pytest.raises(BackendError, match="masquerading needs nftables"):
        g.Gateway("wg0")._nft("")


def test_managed_backend_reports_a_gateway_problem_once(host: Host, caplog: Any) -> None:
    from wg_netmanager.backends.managed import ManagedBackend
    from wg_netmanager.core.model import DesiredState

    class Backend(ManagedBackend):
        up = down = None  # type: ignore[assignment]

    backend = Backend("wg0")
    host.nft_fails = True
    desired = DesiredState((), LAN, True, LAN, True)
    backend._sync_gateway(desired)
    backend._sync_gateway(desired)
    assert backend.gateway_problem == "subnet gateway: nft: Operation not permitted"
    assert [r.getMessage() for r in caplog.records].count(
        "wg0: subnet gateway: nft: Operation not permitted"
    ) == 1
    host.nft_fails = False
    backend._sync_gateway(desired)
    assert backend.gateway_problem is None
