"""The UAPI client: parsing `get=1`, writing `set=1`, errno handling, against a fake socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from ipaddress import IPv4Network, ip_network
from pathlib import Path

import pytest

from wg_netmanager.backends.base import BackendError
from wg_netmanager.backends.keys import b64_to_hex, generate_private_key, public_key
from wg_netmanager.backends.reconcile import PeerOp
from wg_netmanager.backends.uapi import UapiClient, parse_endpoint, parse_get, peer_lines
from wg_netmanager.core.model import Endpoint

PRIV = generate_private_key()
P1 = public_key(generate_private_key())
P2 = public_key(generate_private_key())

GET_REPLY = (
    f"private_key={b64_to_hex(PRIV)}\n"
    "listen_port=51820\n"
    f"public_key={b64_to_hex(P1)}\n"
    "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
    "protocol_version=1\n"
    "endpoint=192.0.2.2:51002\n"
    "last_handshake_time_sec=1732540000\n"
    "last_handshake_time_nsec=500000000\n"
    "tx_bytes=456\n"
    "rx_bytes=123\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.1.1.2/32\n"
    "allowed_ip=10.1.1.4/32\n"
    f"public_key={b64_to_hex(P2)}\n"
    "protocol_version=1\n"
    "last_handshake_time_sec=0\n"
    "last_handshake_time_nsec=0\n"
    "tx_bytes=0\n"
    "rx_bytes=0\n"
    "persistent_keepalive_interval=0\n"
    "errno=0\n\n"
)


def test_parse_get():
    state = parse_get(GET_REPLY)
    assert state.private_key == PRIV and state.listen_port == 51820
    p1, p2 = state.peers[P1], state.peers[P2]
    assert p1.endpoint == Endpoint("192.0.2.2", 51002)
    assert p1.allowed_ips == {IPv4Network("10.1.1.2/32"), IPv4Network("10.1.1.4/32")}
    assert p1.keepalive == 25
    assert p1.last_handshake == pytest.approx(1732540000.5)
    assert (p1.rx_bytes, p1.tx_bytes) == (123, 456)
    assert p2.endpoint is None and p2.last_handshake == 0.0 and p2.allowed_ips == frozenset()
    stats = p1.stats()
    assert stats.public_key == P1 and stats.rx_bytes == 123


def test_parse_get_private_key_not_in_repr():
    assert PRIV not in repr(parse_get(GET_REPLY))


def test_parse_get_errno_raises():
    with pytest.raises(BackendError, match="errno 19"):
        parse_get("errno=19\n\n")


def test_parse_get_malformed_line():
    with pytest.raises(BackendError, match="malformed"):
        parse_get("garbage\n\n")


def test_parse_ipv6_endpoint_and_allowed_ip():
    state = parse_get(
        f"public_key={b64_to_hex(P1)}\nendpoint=[2001:db8::1]:51820\nallowed_ip=fd00::/64\nerrno=0\n"
    )
    assert state.peers[P1].endpoint == Endpoint("2001:db8::1", 51820)
    assert state.peers[P1].allowed_ips == {ip_network("fd00::/64")}
    assert parse_endpoint("(none)") is None


def test_peer_lines():
    ops = [
        PeerOp(P2, remove=True),
        PeerOp(
            P1, endpoint=Endpoint("192.0.2.2", 51002), keepalive=25, allowed_ips=(IPv4Network("10.1.1.2/32"),)
        ),
        PeerOp(P2, keepalive=0),
        PeerOp(P1, allowed_ips=()),
    ]
    assert peer_lines(ops) == [
        f"public_key={b64_to_hex(P2)}",
        "remove=true",
        f"public_key={b64_to_hex(P1)}",
        "endpoint=192.0.2.2:51002",
        "persistent_keepalive_interval=25",
        "replace_allowed_ips=true",
        "allowed_ip=10.1.1.2/32",
        f"public_key={b64_to_hex(P2)}",
        "persistent_keepalive_interval=0",
        f"public_key={b64_to_hex(P1)}",
        "replace_allowed_ips=true",
    ]


class FakeDaemon:
    """A UAPI server that answers get with GET_REPLY and set with a configurable errno."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[str] = []
        self.set_errno = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                text = data.decode()
                self.requests.append(text)
                if text.startswith("get=1"):
                    conn.sendall(GET_REPLY.encode())
                else:
                    conn.sendall(f"errno={self.set_errno}\n\n".encode())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    d = FakeDaemon(tmp_path / "wgx.sock")
    try:
        yield d
    finally:
        d.close()


def test_client_get_and_set(daemon: FakeDaemon):
    client = UapiClient(daemon.path)
    assert client.exists()
    assert set(client.get().peers) == {P1, P2}
    client.set_device(private_key=PRIV, listen_port=51001)
    client.apply_ops([PeerOp(P2, remove=True)])
    client.apply_ops([])  # nothing to send: no request
    assert daemon.requests[1] == f"set=1\nprivate_key={b64_to_hex(PRIV)}\nlisten_port=51001\n\n"
    assert daemon.requests[2] == f"set=1\npublic_key={b64_to_hex(P2)}\nremove=true\n\n"
    assert len(daemon.requests) == 3


def test_client_set_error_does_not_echo_the_key(daemon: FakeDaemon):
    daemon.set_errno = 22
    with pytest.raises(BackendError, match="errno 22") as info:
        UapiClient(daemon.path).set_device(private_key=PRIV)
    assert b64_to_hex(PRIV) not in str(info.value) and PRIV not in str(info.value)


def test_client_missing_socket(tmp_path: Path):
    client = UapiClient(tmp_path / "nope.sock")
    assert not client.exists()
    with pytest.raises(BackendError, match="cannot talk"):
        client.get()
