# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""What a new net.yaml asks of a running agent: nothing, a reload (SIGHUP) or a restart.

The agent applies these fields of `network` on SIGHUP (io/daemon.py `_reload`), which reads
the key files (sharedKeyFile, previousSharedKeyFile) again too, the static nodes (`peers`) as
long as this node's own entry among them (it is a static node) stays as it was, and the
`leaves`; any other difference needs a restart. A net.yaml may hold the shared key inline (one
written before the key files, or the original tool's): nothing here puts the texts, or any
value read from them, into an exception or a return value.
"""

from __future__ import annotations

from typing import Any

import yaml

RELOADABLE = frozenset(
    {
        "sharedKey",
        "previousSharedKey",
        "sharedKeyFile",
        "previousSharedKeyFile",
        "caPublicKey",
        "revokedCerts",
        "routedSubnets",
    }
)
INLINE_KEYS = ("sharedKey", "previousSharedKey")

NONE, RELOAD, RESTART = "none", "reload", "restart"


def _parse(text: Any) -> Any:
    try:
        return yaml.safe_load(text) if isinstance(text, str) and text.strip() else None
    except yaml.YAMLError:
        return None


def _own_entry(peers: Any, name: Any, wg_ip: Any) -> Any:
    """This node's entry among the static nodes (None: it is not one), in either form of
    `peers` (a mapping by name, or the original tool's list, where an entry without a name is
    known by its wgIp); `peers` itself when it has neither form."""
    if isinstance(peers, dict):
        return peers.get(name)
    if isinstance(peers, list):
        for entry in peers:
            if isinstance(entry, dict) and (
                entry.get("name") == name or ("name" not in entry and str(entry.get("wgIp")) == str(wg_ip))
            ):
                return entry
        return None
    return peers


def _without_reloadable(doc: dict[str, Any], node: Any) -> dict[str, Any]:
    network = doc.get("network")
    if isinstance(network, dict):
        doc = {**doc, "network": {k: v for k, v in network.items() if k not in RELOADABLE}}
    if node is not None:  # the static nodes but ours: the agent takes them on SIGHUP
        doc = {**doc, "peers": _own_entry(doc.get("peers"), *node)}
    return {k: v for k, v in doc.items() if k != "leaves"}  # taken on SIGHUP too


def change(old: Any, new: Any, name: Any = None, wg_ip: Any = None) -> str:
    """`none` if the two files mean the same (comments aside), `reload` if they differ only
    in fields the agent applies on SIGHUP, `restart` otherwise (also when the old file is
    missing, empty or unreadable: the agent did not run with it). With this node's `name`
    and `wg_ip`, a change of the static nodes is a reload unless it changes this node's own
    entry (it becomes or stops being a static node, or its endpoint or ports change)."""
    before, after = _parse(old), _parse(new)
    if not isinstance(before, dict) or not isinstance(after, dict):
        return RESTART
    if before == after:
        return NONE
    node = (name, wg_ip) if name is not None else None
    if _without_reloadable(before, node) == _without_reloadable(after, node):
        return RELOAD
    return RESTART


def inline_keys(text: Any) -> bool:
    """Whether a net.yaml text holds a shared key itself (not in a key file); also True for a
    text that is not YAML, which might: a caller shows such a file to nobody."""
    if not isinstance(text, str) or not text.strip():
        return False
    doc = _parse(text)
    if not isinstance(doc, dict):
        return True
    network = doc.get("network")
    return not isinstance(network, dict) or any(k in network for k in INLINE_KEYS)
