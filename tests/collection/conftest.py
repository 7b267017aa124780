"""Make the collection importable and runnable as `wg_netmanager.mesh` in tests.

The repository root is the collection root; Ansible (and `import ansible_collections...`)
needs it at `<dir>/ansible_collections/wg_netmanager/mesh`. A temporary directory with one
symlink gives that layout without copying; it is removed when the session ends.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import collection_paths
import pytest
from collection_paths import COLLECTION_ROOT, VENV_BIN, ansible_bin  # noqa: F401 - re-exported

_tree: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _tree
    _tree = Path(tempfile.mkdtemp(prefix="wgnm-collection-"))
    namespace = _tree / "ansible_collections" / "wg_netmanager"
    namespace.mkdir(parents=True)
    (namespace / "mesh").symlink_to(COLLECTION_ROOT)
    sys.path.insert(0, str(_tree))
    collection_paths.tree = _tree


def pytest_unconfigure(config: pytest.Config) -> None:
    if _tree is not None:
        if str(_tree) in sys.path:
            sys.path.remove(str(_tree))
        shutil.rmtree(_tree, ignore_errors=True)


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Environment for ansible commands: our collection, JSON output, no user config."""
    return collection_paths.ansible_environment(tmp_path)


def _run_adhoc(
    env: dict[str, str], module: str, args: Any, *extra: str, timeout: float = 120
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    argv = [ansible_bin("ansible"), "localhost", "-m", module, *extra]
    if args is not None:
        argv += ["-a", args if isinstance(args, str) else json.dumps(args)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        doc = json.loads(proc.stdout)
        result = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"no JSON result from {argv}:\n{proc.stdout}\n{proc.stderr}") from None
    return result, proc


@pytest.fixture
def run_adhoc(ansible_env: dict[str, str]) -> Any:
    """Run one module on localhost (`ansible localhost -m ...`).

    Call as run_adhoc(module, args, *extra_argv); returns (result dict, process).
    """

    def run(module: str, args: Any, *extra: str) -> Any:
        return _run_adhoc(ansible_env, module, args, *extra)

    return run


@pytest.fixture
def ansible_tool() -> Any:
    """Path of an Ansible command line tool (ansible-vault, ...)."""
    return ansible_bin


class StatusServer:
    """A stand-in for the agent's status socket: serves `payload` to each client."""

    def __init__(self, path: Path, payload: bytes) -> None:
        self.path = path
        self.payload = payload
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # timeout (check stop) or closed
                continue
            with conn:
                conn.sendall(self.payload)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def status_server(tmp_path: Path) -> Iterator[Any]:
    """Factory: start a status server for a document (dict) or raw bytes."""
    servers: list[StatusServer] = []

    def start(doc: Any, name: str = "wg0.sock") -> Path:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        server = StatusServer(tmp_path / name, payload)
        servers.append(server)
        return server.path

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def status_alpha() -> dict[str, Any]:
    """A status document as `wg_netmanager status --json` prints it (docs/INTERFACES.md)."""
    return json.loads(json.dumps(_STATUS_ALPHA))


_STATUS_ALPHA = {
    "name": "alpha",
    "wgIp": "10.1.1.1",
    "publicKey": "PUBLICalphaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "interface": "wg0",
    "backend": "wireguard-go",
    "converged": True,
    "drops": {"foreign": 0, "truncated": 0, "forged": 0, "replayed": 0, "stale": 0},
    "peers": [
        {
            "name": "beta",
            "wgIp": "10.1.1.2",
            "publicKey": "PUBLICbetaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "path": "static",
            "gateway": None,
            "endpoint": "198.51.100.2:50000",
            "lastHandshake": 1732540000.0,
            "rxBytes": 123,
            "txBytes": 456,
        },
        {
            "name": "charlie",
            "wgIp": "10.1.1.3",
            "publicKey": "PUBLICcharlieAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "path": "gateway",
            "gateway": "beta",
            "endpoint": None,
            "lastHandshake": 0.0,
            "rxBytes": 0,
            "txBytes": 0,
        },
    ],
}
