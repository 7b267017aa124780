# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Filters over the wg_mesh facts; documented in reachability_table.yml, path_summary.yml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils import reachability


def _wrap(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(data: Any) -> Any:
        try:
            return func(data)
        except reachability.ReachabilityError as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from None

    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


class FilterModule:
    def filters(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "reachability_table": _wrap(reachability.reachability_table),
            "path_summary": _wrap(reachability.path_summary),
        }
