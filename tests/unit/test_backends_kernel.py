"""Kernel backend without a WireGuard kernel module (this machine has none).

What is checked: `available()` says no here; the generic-netlink messages we would send are
accepted and encoded by pyroute2 itself; dumps are parsed from real pyroute2 messages; and the
backend's create/adopt/delete decisions, with the system calls faked.
"""

from __future__ import annotations

import base64
import os
import socket
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from pyroute2.netlink.generic.wireguard import (
    WGPEER_F_REMOVE_ME,
    WGPEER_F_REPLACE_ALLOWEDIPS,
    AsyncWireGuard,
    wgmsg,
)

from wg_netmanager.backends import kernel
from wg_netmanager.backends.base import BackendError
from wg_netmanager.backends.keys import generate_private_key, public_key
from wg_netmanager.backends.reconcile import PeerOp
from wg_netmanager.core.model import DesiredState, Endpoint, InterfaceSettings, PeerSpec

PRIV = generate_private_key()
P1 = public_key(generate_private_key())


def b64(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def dump_msg(peers: list[dict[str, Any]], private_key: str | None = PRIV) -> wgmsg:
    """A WG_CMD_GET_DEVICE reply as the kernel sends it, decoded by pyroute2."""
    m = wgmsg()
    m["cmd"], m["version"] = 0, 1
    m["attrs"] = [["WGDEVICE_A_IFNAME", "wg0"], ["WGDEVICE_A_LISTEN_PORT", 51820]]
    if private_key:
        m["attrs"].append(["WGDEVICE_A_PRIVATE_KEY", private_key])
    peer_attrs = []
    for p in peers:
        attrs: list[Any] = [["WGPEER_A_PUBLIC_KEY", p["key"]]]
        for name in (
            "ENDPOINT",
            "LAST_HANDSHAKE_TIME",
            "RX_BYTES",
            "TX_BYTES",
            "PERSISTENT_KEEPALIVE_INTERVAL",
        ):
            if name.lower() in p:
                attrs.append([f"WGPEER_A_{name}", p[name.lower()]])
        ips = [
            {
                "attrs": [
                    ["WGALLOWEDIP_A_FAMILY", socket.AF_INET],
                    ["WGALLOWEDIP_A_IPADDR", socket.inet_aton(ip.split("/")[0])],
                    ["WGALLOWEDIP_A_CIDR_MASK", int(ip.split("/")[1])],
                ]
            }
            for ip in p.get("ips", [])
        ]
        attrs.append(["WGPEER_A_ALLOWEDIPS", ips])
        peer_attrs.append({"attrs": attrs})
    m["attrs"].append(["WGDEVICE_A_PEERS", peer_attrs])
    m.encode()
    decoded = wgmsg(m.data)
    decoded.decode()
    return decoded


@pytest.mark.skipif(kernel.MODULE_DIR.exists(), reason="this kernel has WireGuard")
def test_not_available_here():
    assert kernel.available(probe_name="wgnmtestprobe") is False


def test_parse_info_merges_split_dump():
    first = dump_msg(
        [
            {
                "key": P1,
                "endpoint": {"addr": "192.0.2.2", "port": 51002},
                "last_handshake_time": {"tv_sec": 1732540000, "tv_nsec": 250000000},
                "rx_bytes": 123,
                "tx_bytes": 456,
                "persistent_keepalive_interval": 25,
                "ips": ["10.1.1.2/32"],
            }
        ]
    )
    # The kernel continues a peer's AllowedIPs in the next message under the same key.
    second = dump_msg([{"key": P1, "ips": ["10.1.1.4/32"]}], private_key=None)
    state = kernel.parse_info([first, second])
    assert state.private_key == PRIV and state.listen_port == 51820
    p = state.peers[P1]
    assert p.endpoint == Endpoint("192.0.2.2", 51002)
    assert p.allowed_ips == {IPv4Network("10.1.1.2/32"), IPv4Network("10.1.1.4/32")}
    assert p.last_handshake == pytest.approx(1732540000.25)
    assert (p.rx_bytes, p.tx_bytes, p.keepalive) == (123, 456, 25)


def test_parse_info_peer_without_endpoint_or_handshake():
    state = kernel.parse_info([dump_msg([{"key": P1}])])
    assert state.peers[P1].endpoint is None and state.peers[P1].last_handshake == 0.0


def encode_with_pyroute2(op: PeerOp) -> dict[str, Any]:
    """Run our request through pyroute2's own WG_CMD_SET_DEVICE builder, then decode it."""
    builder = AsyncWireGuard.__new__(AsyncWireGuard)  # the builder methods need no socket
    msg = wgmsg()
    msg["cmd"], msg["version"] = 1, 1
    msg["attrs"].append(["WGDEVICE_A_IFNAME", "wg0"])
    builder._wg_set_peer(msg, kernel.peer_request(op))
    msg.encode()
    out = wgmsg(msg.data)
    out.decode()
    peer = out.get_attr("WGDEVICE_A_PEERS")[0]
    return {
        "key": peer.get_attr("WGPEER_A_PUBLIC_KEY").decode(),
        "flags": peer.get_attr("WGPEER_A_FLAGS"),
        "endpoint": peer.get_attr("WGPEER_A_ENDPOINT"),
        "keepalive": peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL"),
        "ips": [a["addr"] for a in peer.get_attr("WGPEER_A_ALLOWEDIPS") or []],
    }


def test_set_peer_message():
    op = PeerOp(
        P1,
        endpoint=Endpoint("192.0.2.2", 51002),
        keepalive=25,
        allowed_ips=(IPv4Network("10.1.1.2/32"), IPv4Network("10.1.1.4/32")),
    )
    got = encode_with_pyroute2(op)
    assert got["key"] == P1
    assert got["flags"] == WGPEER_F_REPLACE_ALLOWEDIPS
    assert (got["endpoint"]["addr"], got["endpoint"]["port"]) == ("192.0.2.2", 51002)
    assert got["keepalive"] == 25
    assert got["ips"] == ["10.1.1.2/32", "10.1.1.4/32"]


def test_endpoint_only_message_keeps_allowed_ips():
    got = encode_with_pyroute2(PeerOp(P1, endpoint=Endpoint("192.0.2.9", 1)))
    assert got["flags"] == 0 and got["ips"] == [] and got["keepalive"] is None


def test_remove_peer_message():
    assert encode_with_pyroute2(PeerOp(P1, remove=True))["flags"] == WGPEER_F_REMOVE_ME


class FakeWireGuard:
    """Stands in for pyroute2.WireGuard; records what would go to the kernel."""

    def __init__(self, log: list[Any], info: list[Any]) -> None:
        self.log, self.info_msgs = log, info

    def info(self, ifname: str) -> list[Any]:
        return self.info_msgs

    def set(self, ifname: str, **kw: Any) -> None:
        self.log.append((ifname, kw))

    def close(self) -> None:
        self.log.append("close")


def fake_control(log: list[Any], info: list[Any] | None = None) -> kernel.NetlinkControl:
    return kernel.NetlinkControl("wg0", factory=lambda: FakeWireGuard(log, info or [dump_msg([])]))


def test_netlink_control_sends_ops_in_order():
    log: list[Any] = []
    ctl = fake_control(log)
    ctl.apply_ops([PeerOp(P1, remove=True), PeerOp(P1, allowed_ips=())])
    assert log == [
        ("wg0", {"peer": {"public_key": P1, "remove": True}}),
        ("wg0", {"peer": {"public_key": P1, "replace_allowed_ips": True, "allowed_ips": []}}),
        "close",
    ]


def test_netlink_control_missing_family_is_backend_error():
    def broken() -> Any:
        raise OSError(2, "No such file or directory")

    with pytest.raises(BackendError, match="not available"):
        kernel.NetlinkControl("wg0", factory=broken).get()


@pytest.fixture
def fake_links(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Fake the rtnetlink side: which links exist, and what was done to them."""
    sys: dict[str, Any] = {"links": set(), "calls": []}
    nl = kernel.netlink
    monkeypatch.setattr(nl, "link_exists", lambda name: name in sys["links"])

    def create(name: str, kind: str) -> None:
        sys["links"].add(name)
        sys["calls"].append(("create", name, kind))

    def delete(name: str) -> None:
        sys["links"].discard(name)
        sys["calls"].append(("delete", name))

    monkeypatch.setattr(nl, "create_link", create)
    monkeypatch.setattr(nl, "delete_link", delete)
    monkeypatch.setattr(
        nl, "set_address", lambda n, a, exclusive=True: sys["calls"].append(("addr", n, str(a)))
    )
    monkeypatch.setattr(nl, "set_link_up", lambda n, up=True: sys["calls"].append(("up", n)))
    monkeypatch.setattr(
        nl,
        "sync_routes",
        lambda n, w, src=None: sys["calls"].append(("routes", n, sorted(map(str, w)), str(src))),
    )
    monkeypatch.setattr(nl, "set_forwarding", lambda n, on: sys["calls"].append(("fwd", n, on)))
    return sys


SETTINGS = InterfaceSettings("wg0", IPv4Interface("10.1.1.1/24"), 51820, PRIV)


def test_kernel_backend_lifecycle(fake_links: dict[str, Any], tmp_path: Path):
    wg_log: list[Any] = []
    backend = kernel.KernelBackend(
        "wg0", tmp_path, control=fake_control(wg_log, [dump_msg([], private_key=None)])
    )
    backend.up(SETTINGS)
    assert fake_links["calls"][:3] == [
        ("create", "wg0", "wireguard"),
        ("addr", "wg0", "10.1.1.1/24"),
        ("up", "wg0"),
    ]
    assert ("wg0", {"private_key": PRIV, "listen_port": None}) in wg_log  # port already 51820
    assert backend.public_key == public_key(PRIV)

    backend.apply(
        DesiredState((PeerSpec(P1, None, (IPv4Network("10.1.1.2/32"),)),), (IPv4Network("10.1.1.2/32"),))
    )
    assert (
        "wg0",
        {"peer": {"public_key": P1, "replace_allowed_ips": True, "allowed_ips": ["10.1.1.2/32"]}},
    ) in wg_log
    assert ("routes", "wg0", ["10.1.1.2/32"], "10.1.1.1") in fake_links["calls"]

    # A restarted agent adopts the interface it created.
    again = kernel.KernelBackend("wg0", tmp_path, control=fake_control([], [dump_msg([])]))
    again.up(SETTINGS)
    assert [c for c in fake_links["calls"] if c[0] == "create"] == [("create", "wg0", "wireguard")]
    again.down()
    assert fake_links["calls"][-1] == ("delete", "wg0") and "wg0" not in fake_links["links"]


def test_kernel_backend_refuses_foreign_interface(fake_links: dict[str, Any], tmp_path: Path):
    fake_links["links"].add("wg0")
    backend = kernel.KernelBackend("wg0", tmp_path, control=fake_control([]))
    with pytest.raises(BackendError, match="not created by wg_netmanager"):
        backend.up(SETTINGS)
    backend.down()
    assert "wg0" in fake_links["links"]  # never deleted


def test_a_forwarding_flag_that_cannot_be_written_fails_nothing_else(
    fake_links: dict[str, Any], tmp_path: Path, caplog: Any, monkeypatch: pytest.MonkeyPatch
):
    """/proc/sys read-only (a container): the peers and routes are applied, the problem is
    logged once with what to do, and kept for the status until the flag can be written."""
    wg_log: list[Any] = []
    backend = kernel.KernelBackend(
        "wg0", tmp_path, control=fake_control(wg_log, [dump_msg([], private_key=None)])
    )
    backend.up(SETTINGS)
    writable = [False]

    def set_forwarding(name: str, on: bool) -> None:
        if not writable[0]:
            raise BackendError(
                f"cannot write /proc/sys/net/ipv4/conf/{name}/forwarding: Read-only file system"
            )

    monkeypatch.setattr(kernel.netlink, "set_forwarding", set_forwarding)
    route = IPv4Network("10.1.1.3/32")
    relay = DesiredState(
        (PeerSpec(P1, None, (IPv4Network("10.1.1.2/32"), route)),), (route,), forwarding=True
    )
    for _ in range(3):
        backend.apply(relay)
        backend._synced = None  # as after ROUTE_RESYNC
    assert ("routes", "wg0", ["10.1.1.3/32"], "10.1.1.1") in fake_links["calls"]
    assert (
        backend.forwarding_problem is not None
        and "net.ipv4.conf.default.forwarding=1" in backend.forwarding_problem
    )
    assert sum("cannot write" in r.message for r in caplog.records) == 1
    writable[0] = True
    backend.apply(relay)
    assert backend.forwarding_problem is None
