"""A stand-in for the agent, for the rotation tests: it reads net.yaml at start and on SIGHUP
as the agent does (only the keys matter here), serves a status document on a Unix socket as
`wg_netmanager status --json` does, and records what happened to it.

    python fake_agent.py NET_YAML SOCKET EVENTS HEARS

EVENTS gets one JSON line per event: {"event": "start"|"reload"|"stop", "shared": sha256 of
the shared key (first 16 hex digits; read from sharedKeyFile when net.yaml names one, as the
agent does), "previous": the same of the previous key or null}. HEARS is a JSON list the test
writes: the status's `onPreviousKey` (missing file: []). The status names the keys as the
agent does (`sharedKeyId`, `previousKeyId`: the agent's own `core.frame.key_id`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from wg_netmanager.core.frame import key_id


def digest(key: Any) -> str | None:
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else None


def named(key: Any) -> str | None:
    return key_id(base64.b64decode(key)) if key else None


class FakeAgent:
    def __init__(self, net: Path, sock: Path, events: Path, hears: Path) -> None:
        self.net, self.events, self.hears = net, events, hears
        self.keys: tuple[str | None, str | None] = (None, None)
        self.ids: tuple[str | None, str | None] = (None, None)
        self.stopping = False
        if sock.exists():
            sock.unlink()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(sock))
        os.chmod(sock, 0o600)
        self.server.listen(8)
        self.server.settimeout(0.2)

    def key(self, network: dict[str, Any], field: str) -> Any:
        """The key inline, or in the file named by FIELD + File (relative: beside net.yaml)."""
        if network.get(f"{field}File"):
            return (self.net.parent / network[f"{field}File"]).read_text().strip()
        return network.get(field)

    def load(self, event: str) -> None:
        network = (yaml.safe_load(self.net.read_text()) or {}).get("network", {})
        shared, previous = self.key(network, "sharedKey"), self.key(network, "previousSharedKey")
        self.keys = (digest(shared), digest(previous))
        self.ids = (named(shared), named(previous))
        with self.events.open("a") as out:
            out.write(json.dumps({"event": event, "shared": self.keys[0], "previous": self.keys[1]}) + "\n")

    def status(self) -> dict[str, Any]:
        hears = json.loads(self.hears.read_text()) if self.hears.exists() else []
        return {
            "name": self.net.parent.name,
            "rotating": self.keys[1] is not None,
            "sharedKeyId": self.ids[0],
            "previousKeyId": self.ids[1],
            "onPreviousKey": hears,
            "converged": True,
            "peers": [],
        }

    def serve(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.server.accept()
            except OSError:  # timeout: look at `stopping` again
                continue
            with conn:
                conn.sendall(json.dumps(self.status()).encode())
        with self.events.open("a") as out:
            out.write(json.dumps({"event": "stop"}) + "\n")


def main() -> None:
    net, sock, events, hears = (Path(a) for a in sys.argv[1:5])
    agent = FakeAgent(net, sock, events, hears)
    agent.load("start")
    signal.signal(signal.SIGHUP, lambda *_: agent.load("reload"))
    signal.signal(signal.SIGTERM, lambda *_: setattr(agent, "stopping", True))
    agent.serve()


if __name__ == "__main__":
    main()
