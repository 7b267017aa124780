# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""What a new net.yaml asks of a running agent: nothing, a reload (SIGHUP) or a restart.

The agent applies these fields of `network` on SIGHUP (io/daemon.py `_reload`); any other
difference needs a restart. The texts hold the shared key: nothing here puts them, or any
value read from them, into an exception or a return value.
"""

from __future__ import annotations

from typing import Any

import yaml

RELOADABLE = frozenset({"sharedKey", "previousSharedKey", "caPublicKey", "revokedCerts"})

NONE, RELOAD, RESTART = "none", "reload", "restart"


def _parse(text: Any) -> Any:
    try:
        return yaml.safe_load(text) if isinstance(text, str) and text.strip() else None
    except yaml.YAMLError:
        return None


def _without_reloadable(doc: dict[str, Any]) -> dict[str, Any]:
    network = doc.get("network")
    if not isinstance(network, dict):
        return doc
    return {**doc, "network": {k: v for k, v in network.items() if k not in RELOADABLE}}


def change(old: Any, new: Any) -> str:
    """`none` if the two files mean the same (comments aside), `reload` if they differ only
    in fields the agent applies on SIGHUP, `restart` otherwise (also when the old file is
    missing, empty or unreadable: the agent did not run with it)."""
    before, after = _parse(old), _parse(new)
    if not isinstance(before, dict) or not isinstance(after, dict):
        return RESTART
    if before == after:
        return NONE
    if _without_reloadable(before) == _without_reloadable(after):
        return RELOAD
    return RESTART
