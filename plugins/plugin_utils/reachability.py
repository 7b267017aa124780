# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Turn the `wg_mesh` facts of all nodes into a table and summary lines (controller side).

Pure logic for the filters `reachability_table` and `path_summary`.
"""

from __future__ import annotations

from typing import Any

MISSING = "--"  # no path, or the node's agent did not report
SELF = "."


class ReachabilityError(ValueError):
    """The input is not a mapping or list of wg_mesh facts."""


def _rows(data: Any) -> list[tuple[str, dict[str, Any] | None]]:
    """(node name, fact or None) per node, from a host -> fact mapping or a list of facts."""
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, (list, tuple)):
        items = [(None, fact) for fact in data]
    else:
        raise ReachabilityError(
            "expected a dict of inventory host -> wg_mesh fact, or a list of wg_mesh facts,"
            f" got {type(data).__name__}"
        )
    rows = []
    for index, (host, fact) in enumerate(items):
        if fact is not None and not isinstance(fact, dict):
            raise ReachabilityError(f"wg_mesh fact of {host or index} is not a dict")
        name = (fact or {}).get("name") or host
        if not name:
            raise ReachabilityError(f"wg_mesh fact #{index} has no name")
        rows.append((str(name), fact))
    return sorted(rows, key=lambda row: row[0])


def _peers(fact: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    peers = {}
    for peer in (fact or {}).get("peers") or []:
        if isinstance(peer, dict) and peer.get("name"):
            peers[str(peer["name"])] = peer
    return peers


def _running(fact: dict[str, Any] | None) -> bool:
    return bool(fact) and fact.get("running", True) is not False


def _cell(peer: dict[str, Any] | None) -> str:
    kind = str((peer or {}).get("path") or "none")
    return MISSING if kind == "none" else kind


def reachability_matrix(data: Any) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Return (all node names, row name -> column name -> cell)."""
    rows = _rows(data)
    names = {row[0] for row in rows}
    for row in rows:
        names.update(_peers(row[1]))
    columns = sorted(names)
    matrix = {}
    for name, fact in rows:
        peers = _peers(fact)
        matrix[name] = {col: SELF if col == name else _cell(peers.get(col)) for col in columns}
    return columns, matrix


def reachability_table(data: Any) -> str:
    """A text table: rows are nodes, columns peers, cells the path kind or `--`."""
    columns, matrix = reachability_matrix(data)
    if not matrix:
        return "no nodes"
    rows = [["node", *columns]]
    rows += [[name, *(cells[col] for col in columns)] for name, cells in matrix.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    missing = [
        f"{name} -> {col}" for name, cells in matrix.items() for col in columns if cells[col] == MISSING
    ]
    down = [name for name, fact in _rows(data) if not _running(fact)]
    if down:
        lines.append("agent not running on: " + ", ".join(down))
    if missing:
        lines.append(f"{len(missing)} missing path(s): " + ", ".join(missing))
    else:
        lines.append(f"every node reaches every other node ({len(matrix)} nodes)")
    return "\n".join(lines)


def path_summary(data: Any) -> list[str]:
    """One line per node pair, `alpha -> beta: static`; gateway paths name the relay."""
    rows = _rows(data)
    columns = reachability_matrix(data)[0]
    lines = []
    for name, fact in rows:
        if not _running(fact):
            lines.append(f"{name}: agent not running")
            continue
        peers = _peers(fact)
        for col in columns:
            if col == name:
                continue
            peer = peers.get(col) or {}
            kind = str(peer.get("path") or "none")
            if kind == "gateway" and peer.get("gateway"):
                kind = f"gateway via {peer['gateway']}"
            lines.append(f"{name} -> {col}: {kind}")
    return lines
