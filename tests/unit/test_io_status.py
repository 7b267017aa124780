"""The status server under clients that connect and never read (issue 15, fault 4): a real
Unix socket, the server on its own, a document larger than the socket's buffer."""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from wg_netmanager.io import status
from wg_netmanager.io.status import read_status, start_status_server, stop_status_server

CLIENTS = 200
ANSWER_WITHIN = 2.0  # seconds for `status` while the flood is connected
# About 1 MB of JSON: far more than a Unix socket's send buffer, so a client that does not
# read leaves the rest of the document with the server.
BIG = {"name": "alice", "peers": [{"name": f"n{i:05d}", "endpoint": "x" * 90} for i in range(8000)]}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def flood(path: Path, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(str(path))
        except BlockingIOError:
            pass  # queued in the backlog: it is connected as soon as the server accepts
        socks.append(s)
    return socks


async def wait_until(cond: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture(autouse=True)
def enough_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * CLIENTS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * CLIENTS), hard))


def test_status_answers_while_200_clients_never_read(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        server = await start_status_server(path, lambda: BIG)
        socks: list[socket.socket] = []
        try:
            await asyncio.to_thread(read_status, path)  # warm up: the first document's memory
            before = rss_mb()
            socks = flood(path, CLIENTS)
            await asyncio.sleep(0)  # let the server accept some of them first
            started = time.monotonic()
            doc = await asyncio.to_thread(read_status, path, ANSWER_WITHIN)
            took = time.monotonic() - started
            await asyncio.sleep(0.01)  # the evicted clients' tasks end once they see the cancel
            tasks = len(asyncio.all_tasks())
            grew = rss_mb() - before
            print(
                f"\nstatus, {CLIENTS} stuck clients: {took * 1e3:.0f} ms, {tasks} tasks, RSS +{grew:.0f} MB"
            )
            assert doc["name"] == "alice" and len(doc["peers"]) == len(BIG["peers"])
            assert tasks <= 2 * status.MAX_CLIENTS + 5, tasks  # a client: its task and its wait_for
            assert grew < 40, f"RSS grew by {grew:.0f} MB"
            assert server.status()["clients"] <= status.MAX_CLIENTS
        finally:
            for s in socks:
                s.close()
            await stop_status_server(server, path)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_client_that_does_not_read_is_dropped_and_counted(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(status, "WRITE_TIMEOUT", 0.3)
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        server = await start_status_server(path, lambda: BIG)
        stuck = flood(path, 1)
        try:
            took = await wait_until(lambda: server.dropped == 1, 5, "the stuck client dropped")
            assert took < 2
            assert server.status() == {"clients": 0, "dropped": 1}
            # what it received ends early: the connection was closed under it
            stuck[0].setblocking(True)
            stuck[0].settimeout(2)
            got = b""
            while chunk := stuck[0].recv(1 << 20):
                got += chunk
            assert 0 < len(got) < len(str(BIG))
        finally:
            stuck[0].close()
            await stop_status_server(server, path)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_burst_of_clients_shares_one_document(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    calls = []

    def get_status() -> dict[str, Any]:
        calls.append(1)
        return BIG

    async def main() -> None:
        server = await start_status_server(path, get_status)
        socks = flood(path, 50)
        try:
            await wait_until(lambda: len(calls) >= 1 and server.status()["clients"] > 10, 5, "clients")
            assert len(calls) < 10, len(calls)
        finally:
            for s in socks:
                s.close()
            await stop_status_server(server, path)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_listening_is_enough_to_be_seen_before_serving(tmp_path: Path) -> None:
    """The daemon listens before it touches the interface and serves once it is up; a second
    agent in between sees the first one and stops."""
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        first = status.StatusServer(path, lambda: {"name": "first"})
        first.listen()
        try:
            with pytest.raises(status.StatusError, match="another agent"):
                status.StatusServer(path, lambda: {"name": "second"}).listen()
            first.serve()
            assert (await asyncio.to_thread(read_status, path))["name"] == "first"
        finally:
            await stop_status_server(first, path)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_second_server_that_could_not_listen_leaves_the_first_ones_socket(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        first = await start_status_server(path, lambda: {"name": "first"})
        try:
            second = status.StatusServer(path, lambda: {"name": "second"})
            with pytest.raises(status.StatusError):
                second.listen()
            await stop_status_server(second, path)  # as the daemon's `finally` does
            assert (await asyncio.to_thread(read_status, path))["name"] == "first"
        finally:
            await stop_status_server(first, path)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_live_socket_with_a_full_backlog_is_not_taken_for_stale(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    busy.bind(str(path))
    busy.listen(1)  # an agent that does not accept right now, its backlog full
    queued = flood(path, 8)
    try:
        with pytest.raises(status.StatusError, match="another agent"):
            status.StatusServer(path, lambda: {}).listen()
        assert path.exists()
    finally:
        for s in queued:
            s.close()
        busy.close()
