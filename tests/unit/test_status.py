"""The status socket: modes, stale sockets, one document per connection, client errors."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from wg_netmanager.io.status import (
    StatusError,
    read_status,
    remove,
    socket_path,
    start_status_server,
    stop_status_server,
)

DOC = {"name": "alice", "wgIp": "10.1.1.1", "converged": True, "peers": []}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_socket_path() -> None:
    assert socket_path(Path("/run/wg_netmanager"), "wg0") == Path("/run/wg_netmanager/wg0.sock")


def test_serves_document_with_private_modes(tmp_path: Path) -> None:
    path = tmp_path / "run" / "wg0.sock"
    calls = []

    def get_status() -> dict[str, Any]:
        calls.append(1)
        return {**DOC, "n": len(calls)}

    async def main() -> None:
        server = await start_status_server(path, get_status)
        try:
            assert mode(path.parent) == 0o700
            assert mode(path) == 0o600
            first = await asyncio.to_thread(read_status, path)
            second = await asyncio.to_thread(read_status, path)
            assert first == {**DOC, "n": 1}
            assert second["n"] == 2  # fresh document per connection
        finally:
            await stop_status_server(server, path)
        assert not path.exists()

    run(main())


def test_open_umask_still_gives_0600(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        old = os.umask(0)
        try:
            server = await start_status_server(path, lambda: DOC)
        finally:
            os.umask(old)
        assert mode(path) == 0o600
        assert os.umask(old) == old  # the server restored the process umask
        await stop_status_server(server, path)

    run(main())


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens

    async def main() -> None:
        server = await start_status_server(path, lambda: DOC)
        try:
            assert await asyncio.to_thread(read_status, path) == DOC
        finally:
            await stop_status_server(server, path)

    run(main())


def test_refuses_when_another_agent_listens(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        server = await start_status_server(path, lambda: DOC)
        try:
            with pytest.raises(StatusError, match="another agent"):
                await start_status_server(path, lambda: DOC)
            assert await asyncio.to_thread(read_status, path) == DOC
        finally:
            await stop_status_server(server, path)

    run(main())


def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    path.write_text("precious")
    with pytest.raises(StatusError, match="not a socket"):
        run(start_status_server(path, lambda: DOC))
    remove(path)
    assert path.read_text() == "precious"


def test_broken_get_status_gives_error_document(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"

    def broken() -> dict[str, Any]:
        raise RuntimeError("bug")

    async def main() -> None:
        server = await start_status_server(path, broken)
        try:
            doc = await asyncio.to_thread(read_status, path)
            assert "error" in doc
        finally:
            await stop_status_server(server, path)

    run(main())


def test_client_no_socket(tmp_path: Path) -> None:
    with pytest.raises(StatusError, match="is the agent running"):
        read_status(tmp_path / "wg0.sock")


def test_client_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    with pytest.raises(StatusError, match="not running"):
        read_status(path)


def test_client_timeout(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(path))
    silent.listen(1)  # accepts (in the backlog) but never answers
    try:
        with pytest.raises(StatusError, match="did not answer within 0.2 s"):
            read_status(path, timeout=0.2)
    finally:
        silent.close()


def test_client_not_json(tmp_path: Path) -> None:
    path = tmp_path / "wg0.sock"

    async def main() -> None:
        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"hello")
            w.close()

        server = await asyncio.start_unix_server(serve, path=str(path))
        try:
            with pytest.raises(StatusError, match="not JSON"):
                await asyncio.to_thread(read_status, path)
        finally:
            server.close()
            await server.wait_closed()

    run(main())
