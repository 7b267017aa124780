"""The agent_restart module (and module_utils/mesh_status `ready`, `wait_ready`): restart,
then wait until the agent answers, its static nodes answer it and it reaches as many peers
as before; the agent role's handlers roll the static nodes with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import mesh_status as ms


def doc(reached: int, missing: int = 0, statics: dict[str, bool] | None = None) -> dict[str, Any]:
    peers = [{"name": f"n{i}", "path": "nat"} for i in range(reached)]
    peers += [{"name": f"m{i}", "path": "none"} for i in range(missing)]
    out: dict[str, Any] = {"peers": peers}
    if statics is not None:
        out["staticNodes"] = {name: {"wgIp": "10.1.1.2", "up": up} for name, up in statics.items()}
    return out


@pytest.mark.parametrize(
    ("status", "before", "why"),
    [
        (doc(3, statics={"beta": True}), 3, None),
        (doc(4), 3, None),  # an older agent: no staticNodes
        (doc(3, statics={"beta": True, "echo": False}), 3, "static node(s) echo not answering"),
        (doc(2, 1, statics={"beta": True}), 3, "a path to 2 of the 3 peers"),
        (doc(0), 0, None),  # it reached nobody before either
    ],
)
def test_ready(status: dict[str, Any], before: int, why: str | None) -> None:
    reason = ms.ready(status, before)
    assert reason == why if why is None else why in (reason or "")


def test_wait_ready_polls_until_the_agent_is_back() -> None:
    t = [0.0]
    answers: list[Any] = [ms.AgentNotRunning("nothing listens"), doc(1), doc(3, statics={"beta": True})]

    def read(path: str) -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sleep(s: float) -> None:
        t[0] += s

    why, waited = ms.wait_ready("/x.sock", 3, 10, read=read, clock=lambda: t[0], sleep=sleep, interval=0.5)
    assert (why, waited) == (None, 1.0)


def test_wait_ready_gives_up_with_the_reason() -> None:
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += s

    why, waited = ms.wait_ready(
        "/x.sock", 3, 5, read=lambda p: doc(1, 2), clock=lambda: t[0], sleep=sleep, interval=0.5
    )
    assert why is not None and "1 of the 3" in why and waited == 5.0


def test_module_restarts_and_waits(run_adhoc: Any, status_server: Any, status_alpha: dict[str, Any]) -> None:
    path = status_server(status_alpha)
    args = json.dumps({"commands": [["true"], ["true"]], "socket": str(path), "timeout": 5})
    result, proc = run_adhoc("wg_netmanager.mesh.agent_restart", args)
    assert proc.returncode == 0, proc.stdout
    assert result["changed"] is True
    assert result["peers_before"] == result["peers_after"] == ms.reached(status_alpha) > 0


def test_module_fails_when_a_command_fails(
    run_adhoc: Any, status_server: Any, status_alpha: dict[str, Any]
) -> None:
    path = status_server(status_alpha)
    args = json.dumps({"commands": [["sh", "-c", "echo nope >&2; exit 3"]], "socket": str(path)})
    result, proc = run_adhoc("wg_netmanager.mesh.agent_restart", args)
    assert proc.returncode != 0
    assert "failed (status 3): nope" in result["msg"]


def test_module_fails_when_the_agent_is_not_back(run_adhoc: Any, status_server: Any) -> None:
    path = status_server(doc(2, statics={"beta": True, "echo": False}))
    args = json.dumps({"commands": [["true"]], "socket": str(path), "timeout": 1})
    result, proc = run_adhoc("wg_netmanager.mesh.agent_restart", args)
    assert proc.returncode != 0
    assert "not back after" in result["msg"] and "echo not answering" in result["msg"]


def test_module_restarts_nothing_in_check_mode(run_adhoc: Any, status_server: Any, tmp_path: Any) -> None:
    path = status_server(doc(2))
    marker = tmp_path / "ran"
    args = json.dumps({"commands": [["touch", str(marker)]], "socket": str(path)})
    result, proc = run_adhoc("wg_netmanager.mesh.agent_restart", args, "--check")
    assert proc.returncode == 0 and result["changed"] is True
    assert not marker.exists()


def test_module_with_timeout_0_restarts_and_does_not_wait(run_adhoc: Any, tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    args = json.dumps(
        {"commands": [["touch", str(marker)]], "socket": str(tmp_path / "none.sock"), "timeout": 0}
    )
    result, proc = run_adhoc("wg_netmanager.mesh.agent_restart", args)
    assert proc.returncode == 0, proc.stdout
    assert marker.exists() and result["changed"] is True and result["waited"] == 0.0
