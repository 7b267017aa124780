# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Read and summarise the agent's status document.

The agent serves one JSON document on a Unix socket: a client connects and reads until EOF
(see docs/INTERFACES.md). Reading is kept apart from summarising so the summary is testable
from plain dicts.
"""

from __future__ import annotations

import errno
import json
import socket
import time
from typing import Any, Callable, Optional

SOCKET_DIR = "/run/wg_netmanager"
PATH_KINDS = ("static", "lan", "nat", "gateway", "none")
_MAX_DOCUMENT = 4 * 1024 * 1024  # a mesh of thousands of peers stays far below this


class StatusError(Exception):
    """The status could not be read or is not a status document."""


class AgentNotRunning(StatusError):
    """Nothing listens on the status socket."""


def socket_path(interface: str) -> str:
    return f"{SOCKET_DIR}/{interface}.sock"


def read_status(path: str, timeout: float = 5.0) -> dict[str, Any]:
    """Connect to the status socket at `path`, read until EOF, return the parsed document."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                raise AgentNotRunning(
                    f"the wg_netmanager agent is not running: nothing listens on {path}"
                ) from None
            hint = " (run as root: become=true)" if exc.errno == errno.EACCES else ""
            raise StatusError(f"cannot connect to {path}: {exc}{hint}") from None
        chunks = []
        size = 0
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:  # noqa: UP041 - an alias of TimeoutError only from 3.10
                raise StatusError(f"no complete status from {path} within {timeout} s") from None
            if not chunk:
                break
            size += len(chunk)
            if size > _MAX_DOCUMENT:
                raise StatusError(f"status from {path} is larger than {_MAX_DOCUMENT} bytes")
            chunks.append(chunk)
    finally:
        sock.close()
    return parse_status(b"".join(chunks), path)


def parse_status(data: bytes, source: str = "status") -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StatusError(f"{source}: not a JSON document ({exc})") from None
    if isinstance(doc, dict) and doc.get("error") and "peers" not in doc:
        raise StatusError(f"{source}: the agent reports an error: {doc['error']}")
    if not isinstance(doc, dict) or not isinstance(doc.get("peers", []), list):
        raise StatusError(f"{source}: not a status document (expected an object with peers)")
    return doc


def paths_of(status: dict[str, Any]) -> dict[str, str]:
    """Peer name -> path kind; entries without a name are skipped, unknown kinds kept."""
    paths = {}
    for peer in status.get("peers") or []:
        if isinstance(peer, dict) and peer.get("name"):
            paths[str(peer["name"])] = str(peer.get("path") or "none")
    return paths


def summarize(status: dict[str, Any]) -> dict[str, Any]:
    """The top-level results of mesh_info: converged, peers, paths."""
    paths = paths_of(status)
    converged = status.get("converged")
    if not isinstance(converged, bool):
        # Older or partial documents: derive it the way the agent defines it.
        converged = bool(paths) and all(kind != "none" for kind in paths.values())
    return {
        "running": True,
        "converged": converged,
        "peers": list(status.get("peers") or []),
        "paths": paths,
        "subnets": subnets_of(status),
        "leaves": leaves_of(status),
        "exit_node": exit_node_of(status),
        # The agent's "mobile" is {"active": [names]} for a mobile node, null (or absent, from an
        # agent older than mobile nodes) for the others.
        "mobile": isinstance(status.get("mobile"), dict),
    }


def leaves_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Leaf name -> its path kind as the node sees it (the same strings as the peers': C(nat)
    at its home while its session is fresh, C(gateway) through the home elsewhere, C(none)),
    the relaying home and the home's name; empty without leaves."""
    out = {}
    for leaf in status.get("leaves") or []:
        if isinstance(leaf, dict) and leaf.get("name"):
            out[str(leaf["name"])] = {
                "path": str(leaf.get("path") or "none"),
                "gateway": leaf.get("gateway"),
                "home": leaf.get("home"),
            }
    return out


def exit_node_of(status: dict[str, Any]) -> dict[str, Any]:
    """Whether the node offers an exit, the exit it would use and whether its internet
    traffic goes through it now (C(active)); all unset for an agent older than exit nodes."""
    doc = status.get("exitNode") if isinstance(status.get("exitNode"), dict) else {}
    return {"offers": bool(doc.get("offers")), "uses": doc.get("uses"), "active": bool(doc.get("active"))}


def subnets_of(status: dict[str, Any]) -> dict[str, Any]:
    """The subnet gateways as the node sees them: what it routes for itself (`own`), the
    announced subnets it routes, subnet -> node (`routes`), and those it refuses (`refused`,
    as the agent says them); empty for an agent older than subnet gateways."""
    doc = status.get("subnets") if isinstance(status.get("subnets"), dict) else {}
    routes = {
        str(r["subnet"]): str(r.get("via"))
        for r in doc.get("routes") or []
        if isinstance(r, dict) and r.get("subnet")
    }
    return {
        "own": [str(n) for n in doc.get("own") or []],
        "routes": routes,
        "refused": [r for r in doc.get("refused") or [] if isinstance(r, dict)],
    }


NOT_RUNNING = {
    "running": False,
    "converged": False,
    "peers": [],
    "paths": {},
    "subnets": {"own": [], "routes": {}, "refused": []},
    "leaves": {},
    "exit_node": {"offers": False, "uses": None, "active": False},
    "mobile": False,
}


def not_running_facts() -> dict[str, Any]:
    """The wg_mesh fact for a host whose agent is not running (so reports can show it)."""
    return {"running": False, "converged": False, "peers": []}


def reached(status: dict[str, Any]) -> int:
    """How many peers the node has a path to."""
    return sum(kind != "none" for kind in paths_of(status).values())


def ready(status: dict[str, Any], peers_before: int) -> Optional[str]:
    """Why a restarted agent is not back yet (None: it is): a static node it is configured
    with does not answer, or it reaches fewer peers than before the restart."""
    statics = status.get("staticNodes")
    if isinstance(statics, dict):
        down = sorted(str(name) for name, s in statics.items() if not (isinstance(s, dict) and s.get("up")))
        if down:
            return f"static node(s) {', '.join(down)} not answering"
    now = reached(status)
    if now < peers_before:
        return f"a path to {now} of the {peers_before} peers it reached before the restart"
    return None


def wait_ready(
    path: str,
    peers_before: int,
    timeout: float,
    read: Callable[[str], dict[str, Any]] = read_status,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 0.5,
) -> tuple[Optional[str], float]:
    """Poll the status socket until the agent is back (`ready`) or `timeout` seconds pass:
    (why it is not back, None when it is; seconds waited)."""
    start = clock()
    why: Optional[str] = "its status socket does not answer"
    while True:
        try:
            why = ready(read(path), peers_before)
        except StatusError as exc:
            why = str(exc)
        waited = clock() - start
        if why is None or waited >= timeout:
            return why, waited
        sleep(interval)
