"""The status socket: `<run_dir>/<interface>.sock` hands out one JSON document per connection.

The server side is a thin asyncio shell around a `get_status()` callable owned by the daemon;
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

log = logging.getLogger(__name__)

MAX_DOCUMENT = 16 * 1024 * 1024  # a client stops reading beyond this: not our agent


class StatusError(Exception):
    """The status socket cannot be served or read (message is user-facing)."""


def socket_path(run_dir: Path, interface: str) -> Path:
    return Path(run_dir) / f"{interface}.sock"


async def start_status_server(path: Path, get_status: Callable[[], dict[str, Any]]) -> asyncio.AbstractServer:
    """Listen on `path`; every connection receives `json.dumps(get_status())`, then EOF."""
    path = Path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StatusError(f"{path.parent}: cannot create: {exc.strerror}") from None
    _remove_stale(path)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                data = json.dumps(get_status()).encode() + b"\n"
            except Exception:  # a bug in get_status must not kill the server
                log.exception("building the status document failed")
                data = json.dumps({"error": "internal error, see the agent's log"}).encode()
            writer.write(data)
            await writer.drain()
        except ConnectionError:
            pass  # the client went away; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask makes the socket 0600 at bind time (no window where others can connect);
    # it is process-wide, so it is restored right away.
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise StatusError(f"{path}: cannot listen: {exc.strerror or exc}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    server = await asyncio.start_unix_server(serve, sock=sock)
    log.debug("status socket listening on %s", path)
    return server


async def stop_status_server(server: asyncio.AbstractServer, path: Path) -> None:
    server.close()
    await server.wait_closed()
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
    except OSError:
        # Nobody accepts on it: left over from an agent that did not exit cleanly.
        log.info("removing stale status socket %s", path)
        os.unlink(path)
        return
    finally:
        probe.close()
    raise StatusError(f"{path}: another agent is already running for this interface")


def read_status(path: Path, timeout: float = 2.0) -> dict[str, Any]:
    """Connect to a running agent and return its status document (blocking)."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
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
