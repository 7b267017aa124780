# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Where a shared-key rotation stands on the nodes, from their status documents (controller
side; pure logic for the `rotation_report` filter).

Phase 2 (dropping the previous key) cuts off every node that has only the old key, so it may
run only when every node of the mesh was reached, runs its agent with both keys (`rotating`)
and hears no member of the mesh on the old one (`onPreviousKey`). `blockers` lists, per
node, what stands in the way; the same list in phase 1 says whether phase 2 could run now.

A peer outside the mesh's inventory that still speaks the old key (a node taken out, which
the rotation is meant to shut out) blocks nothing: the report names it as cut off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

NOT_REACHED = "not reached (unreachable, failed, or outside --limit)"


class RotationError(ValueError):
    """The input is not a mapping of inventory host to status document."""


def key_id(shared_key: str) -> str:
    """The agent's name for a shared key (base64 of 32 bytes) in its status: `sharedKeyId`,
    `previousKeyId`. The same keyed hash as the agent's `core.frame.key_id` (a unit test
    holds them together); it tells nothing of the key."""
    try:
        raw = base64.b64decode(str(shared_key).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RotationError("the shared key is not base64") from None
    if len(raw) != 32:
        raise RotationError("the shared key is not base64 of 32 bytes")
    return hashlib.blake2s(b"wg_netmanager key id", key=raw, digest_size=6).hexdigest()


def _state(doc: Any, members: Any, want: str | None = None) -> tuple[str, str | None]:
    """(report line, blocker or None) for one node's status document (None: not reached)."""
    if doc is None:
        return NOT_REACHED, NOT_REACHED
    if not isinstance(doc, dict):
        raise RotationError(f"a status document is a dict, got {type(doc).__name__}")
    if doc.get("running") is False:
        return "agent not running", "agent not running"
    if not doc.get("rotating"):
        return "one key (not rotating)", "not rotating (its agent has one key: phase 1 has not reached it)"
    runs = doc.get("sharedKeyId")  # older agents do not say
    if want is not None and runs is not None and runs != want:
        why = f"runs another shared key (id {runs}; the controller's new key is {want})"
        return why, why
    hears = doc.get("onPreviousKey")
    if not isinstance(hears, list):
        return "rotating; status has no onPreviousKey", "status has no onPreviousKey (agent too old?)"
    inside = sorted(str(h) for h in hears if members is None or h in members)
    outside = sorted(str(h) for h in hears if members is not None and h not in members)
    line = f"rotating; hears {', '.join(inside) or 'nobody'} on the previous key"
    if outside:
        line += f" (and, outside wg_mesh, cut off by phase 2: {', '.join(outside)})"
    return line, f"hears {', '.join(inside)} on the previous key" if inside else None


def rotation_report(statuses: Any, members: Any = None, shared_key_id: Any = None) -> dict[str, Any]:
    """`statuses`: inventory host -> status document (`wg_netmanager status --json`, or the
    mesh_info fact `wg_mesh`), None for a host not reached. `members`: the names and public
    keys of the mesh's nodes, as `onPreviousKey` names peers (None: every peer counts).
    `shared_key_id`: `key_id` of the controller's new key; a node whose agent speaks another
    (`sharedKeyId`) blocks phase 2 (None: not checked).
    Returns `lines` (one per host, sorted) and `blockers` (per host, what keeps phase 2 from
    running; empty: it may)."""
    if not isinstance(statuses, dict):
        raise RotationError(f"expected a dict of inventory host -> status, got {type(statuses).__name__}")
    if members is not None:
        if not isinstance(members, (list, tuple, set, frozenset)):
            raise RotationError(f"members is a list of names and keys, got {type(members).__name__}")
        members = frozenset(str(m) for m in members)
    lines, blockers = [], []
    for host in sorted(statuses, key=str):
        line, blocker = _state(statuses[host], members, None if shared_key_id is None else str(shared_key_id))
        lines.append(f"{host}: {line}")
        if blocker:
            blockers.append(f"{host}: {blocker}")
    return {"lines": lines, "blockers": blockers}
