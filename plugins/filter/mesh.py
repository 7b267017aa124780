# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Filters over the wg_mesh facts and the agent's files; documented in reachability_table.yml,
path_summary.yml, net_yaml_change.yml, net_yaml_inline_keys.yml, rotation_report.yml and
shared_key_id.yml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils import net_yaml, reachability, rotation


def _wrap(func: Callable[..., Any]) -> Callable[..., Any]:
    def run(data: Any, *args: Any) -> Any:
        try:
            return func(data, *args)
        except (reachability.ReachabilityError, rotation.RotationError) as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from None

    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "reachability_table": _wrap(reachability.reachability_table),
            "path_summary": _wrap(reachability.path_summary),
            "net_yaml_change": net_yaml.change,
            "net_yaml_inline_keys": net_yaml.inline_keys,
            "rotation_report": _wrap(rotation.rotation_report),
            "shared_key_id": _wrap(rotation.key_id),
        }
