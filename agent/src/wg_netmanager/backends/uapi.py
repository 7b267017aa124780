"""Client of the WireGuard cross-platform userspace API (wireguard-go, boringtun).

Protocol (https://www.wireguard.com/xplatform/): connect to the unix socket
`/var/run/wireguard/<ifname>.sock`, send `get=1\\n\\n` or `set=1\\n<key=value lines>\\n`,
read lines until an empty line; the last one is `errno=N`. Keys are hex on this socket.
Private keys travel only over this socket; requests are never logged.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from ipaddress import ip_network
from pathlib import Path

from ..core.model import Endpoint
from .base import BackendError, DeviceState, IPNetwork, PeerState
from .keys import b64_to_hex, hex_to_b64
from .reconcile import PeerOp

log = logging.getLogger(__name__)

SOCKET_DIR = Path("/var/run/wireguard")


def socket_path(ifname: str, directory: Path = SOCKET_DIR) -> Path:
    return directory / f"{ifname}.sock"


def parse_endpoint(text: str) -> Endpoint | None:
    if not text or text == "(none)":
        return None
    host, _, port = text.rpartition(":")
    return Endpoint(host.strip("[]"), int(port))


def parse_get(text: str) -> DeviceState:
    """Parse a `get=1` reply (without requiring the trailing errno line)."""
    private_key = ""
    listen_port = 0
    peers: dict[str, PeerState] = {}
    peer: dict[str, object] | None = None
    allowed: list[IPNetwork] = []

    def flush() -> None:
        if peer is not None:
            sec = int(str(peer.get("last_handshake_time_sec", 0)))
            nsec = int(str(peer.get("last_handshake_time_nsec", 0)))
            key = str(peer["public_key"])
            peers[key] = PeerState(
                public_key=key,
                endpoint=peer.get("endpoint"),  # type: ignore[arg-type]
                allowed_ips=frozenset(allowed),
                keepalive=int(str(peer.get("persistent_keepalive_interval", 0))),
                last_handshake=sec + nsec / 1e9 if sec else 0.0,
                rx_bytes=int(str(peer.get("rx_bytes", 0))),
                tx_bytes=int(str(peer.get("tx_bytes", 0))),
            )

    for line in text.splitlines():
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BackendError(f"WireGuard control socket sent a malformed line: {line[:40]!r}")
        if key == "errno":
            if value != "0":
                raise BackendError(f"WireGuard control socket reported errno {value}")
        elif key == "public_key":
            flush()
            peer, allowed = {"public_key": hex_to_b64(value)}, []
        elif peer is None:
            if key == "private_key":
                private_key = hex_to_b64(value)
            elif key == "listen_port":
                listen_port = int(value)
        elif key == "allowed_ip":
            allowed.append(ip_network(value, strict=False))
        elif key == "endpoint":
            peer["endpoint"] = parse_endpoint(value)
        else:
            peer[key] = value
    flush()
    return DeviceState(private_key=private_key, listen_port=listen_port, peers=peers)


def peer_lines(ops: Iterable[PeerOp]) -> list[str]:
    lines: list[str] = []
    for op in ops:
        lines.append(f"public_key={b64_to_hex(op.public_key)}")
        if op.remove:
            lines.append("remove=true")
            continue
        if op.endpoint is not None:
            host = op.endpoint.host
            lines.append(f"endpoint={'[' + host + ']' if ':' in host else host}:{op.endpoint.port}")
        if op.keepalive is not None:
            lines.append(f"persistent_keepalive_interval={op.keepalive}")
        if op.allowed_ips is not None:
            lines.append("replace_allowed_ips=true")
            lines.extend(f"allowed_ip={net}" for net in op.allowed_ips)
    return lines


def device_lines(
    private_key: str | None = None, listen_port: int | None = None, fwmark: int | None = None
) -> list[str]:
    lines = []
    if private_key is not None:
        lines.append(f"private_key={b64_to_hex(private_key)}")
    if listen_port is not None:
        lines.append(f"listen_port={listen_port}")
    if fwmark is not None:
        lines.append(f"fwmark={fwmark}")
    return lines


class UapiClient:
    def __init__(self, path: Path, timeout: float = 3.0) -> None:
        self.path = path
        self.timeout = timeout

    def exists(self) -> bool:
        return self.path.is_socket()

    def _transact(self, request: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(request.encode())
                chunks: list[bytes] = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    # A reply ends with an empty line; the server keeps the socket open.
                    if b"".join(chunks[-2:]).endswith(b"\n\n"):
                        break
        except OSError as exc:
            raise BackendError(
                f"cannot talk to WireGuard control socket {self.path}: {exc.strerror or exc}"
            ) from None
        return b"".join(chunks).decode()

    def get(self) -> DeviceState:
        reply = self._transact("get=1\n\n")
        if "errno=" not in reply:
            raise BackendError(f"WireGuard control socket {self.path} closed without a reply")
        return parse_get(reply)

    def set(self, lines: list[str]) -> None:
        if not lines:
            return
        reply = self._transact("set=1\n" + "".join(line + "\n" for line in lines) + "\n")
        errno = next((ln[6:] for ln in reply.splitlines() if ln.startswith("errno=")), None)
        if errno is None:
            raise BackendError(f"WireGuard control socket {self.path} closed without a reply")
        if errno != "0":
            # The request may hold a private key: name only what failed, never echo it.
            raise BackendError(f"WireGuard rejected a configuration change on {self.path} (errno {errno})")

    def set_device(
        self, private_key: str | None = None, listen_port: int | None = None, fwmark: int | None = None
    ) -> None:
        self.set(device_lines(private_key, listen_port, fwmark))

    def apply_ops(self, ops: list[PeerOp]) -> None:
        # One transaction: wireguard-go applies lines in order, so the op order is kept.
        self.set(peer_lines(ops))
