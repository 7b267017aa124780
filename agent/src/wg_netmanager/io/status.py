"""The status socket: `<run_dir>/<interface>.sock` hands out one JSON document per connection.

The server side is a thin asyncio shell around a `get_status()` callable owned by the daemon,
built to stay answering while hostile or stuck clients hold connections open;
the client side is blocking and used by `wg_netmanager status`. The socket is 0600 in a 0700
directory: the document names peers, endpoints and traffic, which only root should see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.limits import LogLimiter

log = logging.getLogger(__name__)

MAX_DOCUMENT = 16 * 1024 * 1024  # a client stops reading beyond this: not our agent
MAX_CLIENTS = 32  # connections served at once; one more evicts the one served longest
WRITE_TIMEOUT = 2.0  # seconds a client has to read the whole document, or it is dropped
BACKLOG = 512  # connections the kernel queues while the agent starts or is busy
CONNECT_RETRY = 0.02  # seconds between two connects while the agent's backlog is full
SHARE_FOR = 0.1  # seconds a document is handed to clients arriving while others still read it
ACCEPT_PAUSE = 0.1  # seconds without accepting after an accept error (out of descriptors)
ACCEPT_BATCH = 64  # connections accepted (and answered with one encoding) per turn of the loop


class StatusError(Exception):
    """The status socket cannot be served or read (message is user-facing)."""


def socket_path(run_dir: Path, interface: str) -> Path:
    return Path(run_dir) / f"{interface}.sock"


class StatusServer:
    """Serve `get_status()` as JSON on a Unix socket, one document per connection, then EOF.

    A client that does not read must cost a bounded amount and never delay the others. The
    document goes to the kernel as the connection is accepted; only what does not fit in the
    socket's buffer waits for the client to read, and then at most MAX_CLIENTS wait at once
    (a new one evicts the one waiting longest), each for up to WRITE_TIMEOUT seconds. The
    clients of a burst share one encoded document instead of one copy each (`sock_sendall`
    sends from it without copying). Clients dropped for either reason count in `dropped`.
    """

    def __init__(self, path: Path, get_status: Callable[[], dict[str, Any]]) -> None:
        self.path = Path(path)
        self.get_status = get_status
        self.sock: socket.socket | None = None
        self.bound = False  # the socket file at `path` is ours to remove
        self.dropped = 0  # clients dropped: too slow to read, or evicted by newer ones
        self._clients: dict[asyncio.Task[None], float] = {}  # in the order they came
        self._accepting: asyncio.Task[None] | None = None
        self._document: tuple[float, bytes] | None = None  # (built at, bytes)
        self._log = LogLimiter(60.0)

    def listen(self) -> None:
        """Bind and listen, without answering yet: from here on, another agent starting for
        this interface sees this one (`_remove_stale`); answers start with `serve`."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StatusError(f"{self.path.parent}: cannot create: {exc.strerror}") from None
        _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The umask makes the socket 0600 at bind time (no window where others can connect);
        # it is process-wide, so it is restored right away.
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self.path))
            self.bound = True
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            raise StatusError(f"{self.path}: cannot listen: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.setblocking(False)
        self.sock = sock
        log.debug("status socket listening on %s", self.path)

    def serve(self) -> None:
        assert self.sock is not None, "listen() first"
        if self._accepting is None:
            self._accepting = asyncio.ensure_future(self._accept_loop(self.sock))

    def status(self) -> dict[str, int]:
        return {"clients": len(self._clients), "dropped": self.dropped}

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and friends: let the clients we have finish
                if self._log.allow("accept", loop.time()) is not None:
                    log.warning("status socket: accept failed: %s", exc.strerror or exc)
                await asyncio.sleep(ACCEPT_PAUSE)
                continue
            batch = [conn]
            while len(batch) < ACCEPT_BATCH:  # whatever else waits in the backlog
                try:
                    batch.append(sock.accept()[0])
                except OSError:  # BlockingIOError: no more
                    break
            data = self._encoded(loop.time(), burst=len(batch) > 1)
            for conn in batch:
                self._answer(conn, data)
            await asyncio.sleep(0)  # the agent's own work between two batches of a flood

    def _answer(self, conn: socket.socket, data: bytes) -> None:
        """Hand `data` to the kernel at once, which is all of it unless the document is larger
        than the socket's buffer; only the rest waits for the client, in a task of its own."""
        conn.setblocking(False)
        try:
            sent = conn.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            conn.close()
            return
        if sent == len(data):
            conn.close()
            return
        if len(self._clients) >= MAX_CLIENTS:
            oldest = next(iter(self._clients))
            del self._clients[oldest]
            oldest.cancel()
            self.dropped += 1
        task = asyncio.ensure_future(self._serve(conn, memoryview(data)[sent:]))
        self._clients[task] = asyncio.get_running_loop().time()

    async def _serve(self, conn: socket.socket, rest: memoryview) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_sendall(conn, rest), WRITE_TIMEOUT)
        except asyncio.TimeoutError:
            self.dropped += 1
            if self._log.allow("slow", loop.time()) is not None:
                log.info("status socket: dropped a client that did not read for %g s", WRITE_TIMEOUT)
        except OSError:
            pass  # the client went away; nothing to tell it
        finally:
            conn.close()
            self._clients.pop(asyncio.current_task(), None)  # type: ignore[arg-type]

    def _encoded(self, now: float, burst: bool) -> bytes:
        """The document, encoded; one encoding serves the clients of a burst (of several
        connections at once, or while earlier ones still read) for up to SHARE_FOR seconds."""
        cached = self._document
        if cached is not None and (burst or self._clients) and now - cached[0] < SHARE_FOR:
            return cached[1]
        try:
            data = json.dumps(self.get_status()).encode() + b"\n"
        except Exception:  # a bug in get_status must not kill the server
            log.exception("building the status document failed")
            data = json.dumps({"error": "internal error, see the agent's log"}).encode()
        self._document = (now, data)
        return data

    def close(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        for task in self._clients:
            task.cancel()
        if self.sock is not None:
            self.sock.close()

    async def wait_closed(self) -> None:
        tasks = [t for t in (self._accepting, *self._clients) if t is not None]
        if tasks:
            await asyncio.wait(tasks)
        self._accepting = None
        self._clients.clear()


async def start_status_server(path: Path, get_status: Callable[[], dict[str, Any]]) -> StatusServer:
    """Listen on `path` and answer at once (the daemon calls `listen` and `serve` apart)."""
    server = StatusServer(path, get_status)
    server.listen()
    server.serve()
    return server


async def stop_status_server(server: StatusServer, path: Path) -> None:
    server.close()
    await server.wait_closed()
    if server.bound:  # never another agent's socket, found there by a `listen` that failed
        remove(path)


def remove(path: Path) -> None:
    """Remove the socket file (only a socket: never delete a file someone put there)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def _remove_stale(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise StatusError(f"{path} exists and is not a socket; remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        # Nobody listens on it: left over from an agent that did not exit cleanly.
        log.info("removing stale status socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError:
        pass  # EAGAIN: a backlog full of clients, or a timeout: someone listens on it
    finally:
        probe.close()
    raise StatusError(f"{path}: another agent is already running for this interface")


def _connect(sock: socket.socket, path: Path, deadline: float) -> None:
    """Connect, waiting while the backlog is full: a Unix socket refuses with EAGAIN at once
    then (a flood of clients), where TCP would wait."""
    while True:
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            if time.monotonic() + CONNECT_RETRY > deadline:
                raise TimeoutError from None
            time.sleep(CONNECT_RETRY)


def read_status(path: Path, timeout: float = 2.0) -> dict[str, Any]:
    """Connect to a running agent and return its status document (blocking)."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            _connect(sock, path, deadline)
        except FileNotFoundError:
            raise StatusError(f"{path}: no status socket; is the agent running for this interface?") from None
        except ConnectionRefusedError:
            raise StatusError(f"{path}: the agent is not running (stale socket)") from None
        except PermissionError:
            raise StatusError(f"{path}: permission denied (run as root)") from None
        except (TimeoutError, socket.timeout):
            raise StatusError(f"{path}: the agent did not accept within {timeout:g} s") from None
        except OSError as exc:
            raise StatusError(f"{path}: cannot connect: {exc.strerror or exc}") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StatusError(f"{path}: the agent did not answer within {timeout:g} s")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, socket.timeout):  # socket.timeout: Python 3.9
                continue  # the deadline check above reports it
            except OSError as exc:
                raise StatusError(f"{path}: read failed: {exc.strerror or exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_DOCUMENT:
                raise StatusError(f"{path}: answer too large; is this an agent's socket?")
    finally:
        sock.close()
    try:
        doc = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise StatusError(f"{path}: the agent sent something that is not JSON") from None
    if not isinstance(doc, dict):
        raise StatusError(f"{path}: the agent sent an unexpected document")
    return doc
