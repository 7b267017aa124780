"""plugin_utils/reachability.py and the reachability_table / path_summary filters."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.plugin_utils import reachability as r


def fact(name: str, **paths: str) -> dict[str, Any]:
    peers = []
    for peer, kind in paths.items():
        via = None
        if kind.startswith("gateway:"):
            kind, via = kind.split(":")
        peers.append({"name": peer, "path": kind, "gateway": via})
    return {"name": name, "converged": "none" not in paths.values(), "peers": peers}


def mesh() -> dict[str, Any]:
    return {
        "alpha": fact("alpha", beta="static", charlie="gateway:beta"),
        "beta": fact("beta", alpha="static", charlie="nat"),
        "charlie": fact("charlie", alpha="gateway:beta", beta="nat"),
    }


def test_table_all_reachable() -> None:
    assert r.reachability_table(mesh()).splitlines() == [
        "node     alpha    beta    charlie",
        "alpha    .        static  gateway",
        "beta     static   .       nat",
        "charlie  gateway  nat     .",
        "every node reaches every other node (3 nodes)",
    ]


def test_table_with_missing_paths_and_a_silent_node() -> None:
    data = mesh()
    data["beta"]["peers"][1]["path"] = "none"
    data["delta"] = None  # no fact: the agent did not report
    data["echo"] = {"running": False, "converged": False, "peers": []}
    lines = r.reachability_table(data).splitlines()
    assert lines[0].split() == ["node", "alpha", "beta", "charlie", "delta", "echo"]
    assert lines[2].split() == ["beta", "static", ".", "--", "--", "--"]
    assert lines[4].split() == ["delta", "--", "--", "--", ".", "--"]
    assert lines[-2] == "agent not running on: delta, echo"
    assert lines[-1].startswith("15 missing path(s): alpha -> delta, alpha -> echo,")
    assert "beta -> charlie" in lines[-1]


def test_list_input_uses_fact_names() -> None:
    data = list(mesh().values())
    assert r.reachability_table(data) == r.reachability_table(mesh())


def test_peer_only_known_from_others_gets_a_column() -> None:
    data = {"alpha": fact("alpha", beta="static")}
    assert r.reachability_table(data).splitlines()[:2] == [
        "node   alpha  beta",
        "alpha  .      static",
    ]


@pytest.mark.parametrize("bad", ["text", 3, {"alpha": "not a dict"}, [{"peers": []}]])
def test_bad_input(bad: Any) -> None:
    with pytest.raises(r.ReachabilityError):
        r.reachability_table(bad)


def test_empty() -> None:
    assert r.reachability_table({}) == "no nodes"
    assert r.path_summary([]) == []


def test_path_summary() -> None:
    data = mesh()
    data["delta"] = None
    data["beta"]["peers"][1]["path"] = "none"
    assert r.path_summary(data) == [
        "alpha -> beta: static",
        "alpha -> charlie: gateway via beta",
        "alpha -> delta: none",
        "beta -> alpha: static",
        "beta -> charlie: none",
        "beta -> delta: none",
        "charlie -> alpha: gateway via beta",
        "charlie -> beta: nat",
        "charlie -> delta: none",
        "delta: agent not running",
    ]


def test_filters_through_ansible(run_adhoc: Any) -> None:
    """The filter plugin loads by FQCN and reports bad input as a filter error."""
    result, _ = run_adhoc(
        "ansible.builtin.debug",
        None,
        "-a",
        "msg={{ facts | wg_netmanager.mesh.path_summary }}",
        "-e",
        '{"facts": {"alpha": {"name": "alpha", "peers": [{"name": "beta", "path": "lan"}]}}}',
    )
    assert result["msg"] == ["alpha -> beta: lan"], result
    result, _ = run_adhoc(
        "ansible.builtin.debug",
        "msg={{ 'x' | wg_netmanager.mesh.reachability_table }}",
    )
    assert result["failed"] is True
    assert "reachability_table: expected a dict" in result["msg"]
