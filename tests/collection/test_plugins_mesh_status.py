"""module_utils/mesh_status.py and the mesh_info module, against a real Unix socket."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import mesh_status as ms


def test_socket_path() -> None:
    assert ms.socket_path("wg0") == "/run/wg_netmanager/wg0.sock"


def test_read_status(status_server: Any, status_alpha: dict[str, Any]) -> None:
    path = status_server(status_alpha)
    assert ms.read_status(str(path)) == status_alpha


def test_read_status_large_document(status_server: Any, status_alpha: dict[str, Any]) -> None:
    """More than one recv() worth of data is read until EOF."""
    peer = status_alpha["peers"][0]
    status_alpha["peers"] = [dict(peer, name=f"n{i}") for i in range(2000)]
    path = status_server(status_alpha)
    assert len(ms.read_status(str(path))["peers"]) == 2000


def test_missing_socket_means_not_running(tmp_path: Path) -> None:
    with pytest.raises(ms.AgentNotRunning, match="not running: nothing listens on"):
        ms.read_status(str(tmp_path / "wg0.sock"))


def test_stale_socket_means_not_running(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: ECONNREFUSED
    with pytest.raises(ms.AgentNotRunning):
        ms.read_status(str(path))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"{not json", "not a JSON document"),
        (b"[1, 2]", "not a status document"),
        (b'{"peers": 3}', "not a status document"),
        (b"\xff\xfe", "not a JSON document"),
        (b'{"error": "internal error"}', "the agent reports an error: internal error"),
    ],
)
def test_bad_documents(status_server: Any, payload: bytes, match: str) -> None:
    path = status_server(payload)
    with pytest.raises(ms.StatusError, match=match):
        ms.read_status(str(path))


def test_silent_server_times_out(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(ms.StatusError, match="no complete status"):
            ms.read_status(str(path), timeout=0.3)
        assert time.monotonic() - started < 5
    finally:
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


def test_summarize(status_alpha: dict[str, Any]) -> None:
    summary = ms.summarize(status_alpha)
    assert summary["running"] is True
    assert summary["converged"] is True
    assert summary["paths"] == {"beta": "static", "charlie": "gateway"}
    assert [p["name"] for p in summary["peers"]] == ["beta", "charlie"]


def test_summarize_subnets() -> None:
    doc = {
        "peers": [],
        "subnets": {
            "own": ["192.168.7.0/24"],
            "routes": [{"subnet": "192.168.50.0/24", "via": "delta", "path": "nat"}],
            "refused": [{"subnet": "8.0.0.0/8", "node": "eve", "reason": "not a private-use network"}],
        },
    }
    assert ms.summarize(doc)["subnets"] == {
        "own": ["192.168.7.0/24"],
        "routes": {"192.168.50.0/24": "delta"},
        "refused": [{"subnet": "8.0.0.0/8", "node": "eve", "reason": "not a private-use network"}],
    }
    assert ms.summarize({"peers": []})["subnets"] == {"own": [], "routes": {}, "refused": []}


def test_summarize_leaves_and_exit_node() -> None:
    doc = {
        "peers": [],
        "leaves": [
            {"name": "phone", "wgIp": "10.1.1.50", "home": "beta", "path": "gateway", "gateway": "beta"},
            {"name": "tablet", "wgIp": "10.1.1.51", "home": "beta", "path": "none", "gateway": None},
            {"wgIp": "10.1.1.52"},  # no name: skipped
        ],
        "exitNode": {"offers": False, "uses": "beta", "active": True},
    }
    summary = ms.summarize(doc)
    assert summary["leaves"] == {
        "phone": {"path": "gateway", "gateway": "beta", "home": "beta"},
        "tablet": {"path": "none", "gateway": None, "home": "beta"},
    }
    assert summary["exit_node"] == {"offers": False, "uses": "beta", "active": True}
    older = ms.summarize({"peers": []})  # an agent from before leaves and exit nodes
    assert (older["leaves"], older["exit_node"]) == ({}, {"offers": False, "uses": None, "active": False})
    assert set(ms.NOT_RUNNING) == set(summary)  # a host without agent reports the same keys


def test_summarize_mobile() -> None:
    assert ms.summarize({"peers": [], "mobile": {"active": ["charlie"]}})["mobile"] is True
    assert ms.summarize({"peers": [], "mobile": None})["mobile"] is False
    assert ms.summarize({"peers": []})["mobile"] is False  # an agent from before mobile nodes


@pytest.mark.parametrize(
    ("paths", "converged"),
    [(["static", "nat"], True), (["static", "none"], False), ([], False)],
)
def test_converged_derived_when_absent(paths: list[str], converged: bool) -> None:
    doc = {"peers": [{"name": f"p{i}", "path": kind} for i, kind in enumerate(paths)]}
    assert ms.summarize(doc)["converged"] is converged


def test_module_reads_socket(run_adhoc: Any, status_server: Any, status_alpha: dict[str, Any]) -> None:
    path = status_server(status_alpha)
    result, proc = run_adhoc("wg_netmanager.mesh.mesh_info", f"socket={path}", "--check")
    assert proc.returncode == 0, result
    assert result["changed"] is False
    assert result["running"] is True
    assert result["converged"] is True
    assert result["paths"] == {"beta": "static", "charlie": "gateway"}
    assert result["ansible_facts"]["wg_mesh"] == json.loads(json.dumps(status_alpha))
    assert result["socket"] == str(path)


def test_module_not_running(run_adhoc: Any, tmp_path: Path) -> None:
    missing = tmp_path / "wg7.sock"
    result, proc = run_adhoc("wg_netmanager.mesh.mesh_info", f"socket={missing}")
    assert proc.returncode != 0
    assert result["failed"] is True
    assert f"not running: nothing listens on {missing}" in result["msg"]

    result, proc = run_adhoc("wg_netmanager.mesh.mesh_info", f"socket={missing} fail_on_missing=false")
    assert proc.returncode == 0, result
    assert (result["running"], result["converged"], result["peers"]) == (False, False, [])
    assert result["ansible_facts"]["wg_mesh"] == {
        "running": False,
        "converged": False,
        "peers": [],
    }


def test_module_interface_option_picks_default_socket(run_adhoc: Any) -> None:
    result, _ = run_adhoc("wg_netmanager.mesh.mesh_info", "interface=wgtestnone fail_on_missing=false")
    assert result["socket"] == "/run/wg_netmanager/wgtestnone.sock"


def test_module_reads_the_agents_own_status_server(
    run_adhoc: Any, tmp_path: Path, status_alpha: dict[str, Any]
) -> None:
    """Interop with the server side in the agent package, not only with our stand-in."""
    agent_status = pytest.importorskip("wg_netmanager.io.status")
    path = tmp_path / "run" / "wg0.sock"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        holder["server"] = await agent_status.start_status_server(path, lambda: status_alpha)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
        assert ready.wait(10)
        result, proc = run_adhoc("wg_netmanager.mesh.mesh_info", f"socket={path}")
        assert proc.returncode == 0, result
        assert result["ansible_facts"]["wg_mesh"]["name"] == "alpha"
        assert result["paths"] == {"beta": "static", "charlie": "gateway"}
    finally:
        if "server" in holder:
            stop = agent_status.stop_status_server(holder["server"], path)
            asyncio.run_coroutine_threadsafe(stop, loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
