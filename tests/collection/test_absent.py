"""playbooks/site.yml takes a node out of the mesh with `wg_state: absent`, on the fake fleet
of test_fleet.py (three nodes on localhost, tests/collection/fake_agent.py as their agent,
service manager `none`), in CA mode, with the runs in a network namespace of their own so
that an interface can be left behind for the role to delete. Needs root, start-stop-daemon
and `ip`.

One sequence of runs, each test looking at one step: a first run (charlie, a static node,
is in the mesh); charlie's agent is then made to look killed with its interface still up (a
veth link in the namespace, with the agent's ownership marker) and charlie gets
`wg_state: absent`: a check run (writes nothing, stops nothing, says what it would do),
a run under `--limit charlie` (with a new host on charlie's address in the inventory, which
the check of the whole mesh accepts), a full run (the other nodes drop charlie from net.yaml
and list its certificate as revoked) and one more (changes nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_fleet import AGENT, CHARLIE_STATIC, NET_TASK, SKIP, Fleet, changed, wrote

pytestmark = pytest.mark.collection

REMOVE_TASK = "Remove the agent's service definition, files, key and virtualenv"
STAYING = ("alpha", "beta")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def link_exists(netns: str, name: str) -> bool:
    done = subprocess.run(["ip", "-n", netns, "link", "show", name], capture_output=True, timeout=30)
    return done.returncode == 0


def wait_events(fleet: Fleet, wanted: dict[str, list[str]], deadline: float = 15) -> None:
    """Until each host's agent has these last events, in this order."""
    end = time.monotonic() + deadline
    while True:
        last = {h: [e["event"] for e in fleet.events(h)][-len(w) :] for h, w in wanted.items()}
        if last == wanted:
            return
        if time.monotonic() > end:
            raise AssertionError(f"agents' last events {last}, expected {wanted}")
        time.sleep(0.1)


def cert_serial(ca: Path, host: str) -> str:
    cert = ca / "issued" / f"{host}.crt"
    argv = [str(AGENT), "cert", "show", "--json", "--ca", str(ca / "ca.pub"), str(cert)]
    shown = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(shown.stdout)["serial"]


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not AGENT.exists():
        pytest.skip("the agent is not installed in .venv (run scripts/setup)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the role writes the agent's files owned by root")
    if shutil.which("start-stop-daemon") is None or shutil.which("ip") is None:
        pytest.skip("needs start-stop-daemon and ip")
    fleet = Fleet(tmp_path_factory.mktemp("absent"))
    fleet.group_vars["wg_ca_enabled"] = True
    fleet.hosts["charlie"].update(CHARLIE_STATIC)
    netns = f"wgnmt-absent-{uuid.uuid4().hex[:6]}"
    ip("netns", "add", netns)
    fleet.wrap = ["ip", "netns", "exec", netns]
    charlie_home = fleet.tmp / "home" / "charlie"
    s: dict[str, Any] = {"fleet": fleet, "netns": netns, "home": charlie_home}
    try:
        s["first"] = fleet.play(*SKIP)
        wait_events(fleet, {h: ["start"] for h in fleet.hosts})
        s["first_net"] = (fleet.out / "alpha" / "net.yaml").read_text()
        s["serial"] = cert_serial(fleet.ctl / "mesh-ca", "charlie")

        # The interface an agent killed with -9 leaves (veth: this kernel has no dummy module),
        # and the virtualenv charlie runs from.
        ip("-n", netns, "link", "add", "wgc", "type", "veth", "peer", "name", "wgc-peer")
        (fleet.state / "wgc.created.json").write_text(json.dumps({"ifname": "wgc", "backend": "kernel"}))
        (fleet.state / "wgc.lock").write_text("")
        (fleet.state / "wgc2.lock").write_text("")  # another interface's
        for sub in ("venv/bin", "wheels"):
            (charlie_home / sub).mkdir(parents=True)
        (charlie_home / "venv/bin/wg_netmanager").write_text("#!/bin/sh\n")
        (charlie_home / "wheels/wg_netmanager-0.1.0-py3-none-any.whl").write_text("")
        fleet.hosts["charlie"].update(wg_state="absent", fleet_venv=str(charlie_home / "venv"))

        before = fleet.snapshot()
        events_before = {h: fleet.events(h) for h in fleet.hosts}
        s["check"] = fleet.play("--check", "--diff", *SKIP)
        s["check_wrote"] = wrote(before, fleet.snapshot())
        s["check_events"] = {h: fleet.events(h) == events_before[h] for h in fleet.hosts}
        s["check_link"] = link_exists(netns, "wgc")

        # delta on charlie's address: only valid while charlie is absent (not deployed here).
        fleet.hosts["delta"] = {"wg_ip": fleet.hosts["charlie"]["wg_ip"], "wg_interface": "wgd"}
        s["limit"] = fleet.play("--limit", "charlie", *SKIP)
        del fleet.hosts["delta"]
        wait_events(fleet, {"charlie": ["stop"]})
        s["limit_link"] = link_exists(netns, "wgc")
        s["limit_net"] = (fleet.out / "alpha" / "net.yaml").read_text()
        s["limit_files"] = fleet.snapshot()

        s["full"] = fleet.play("--diff", *SKIP)
        wait_events(fleet, {h: ["reload"] for h in STAYING})
        s["full_net"] = {h: (fleet.out / h / "net.yaml").read_text() for h in STAYING}
        s["again"] = fleet.play(*SKIP)
    finally:
        fleet.stop()
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
    return s


def test_check_run_writes_and_stops_nothing_and_says_what_it_would_do(steps: dict[str, Any]) -> None:
    run = steps["check"]
    assert steps["check_wrote"] == []
    assert all(steps["check_events"].values())  # no agent stopped, restarted or reloaded
    assert steps["check_link"]
    tasks = run["tasks"]
    assert tasks["Say that a real run would stop the agent (check mode)"]["charlie"]["changed"]
    assert tasks["Say that a real run would delete the interface (check mode)"]["charlie"]["changed"]
    removed = {r["item"]: r for r in tasks[REMOVE_TASK]["charlie"]["results"]}
    fleet = steps["fleet"]
    for path in (fleet.out / "charlie", steps["home"], fleet.state / "wgc", fleet.run_dir / "charlie.pid"):
        assert removed[str(path)]["changed"], path
        assert removed[str(path)]["diff"]["after"]["state"] == "absent"
    assert str(fleet.state) not in removed  # alpha's and beta's keys are there too
    assert tasks["Revoke the certificates of hosts with wg_state absent"]["alpha"]["changed"]
    diff = tasks[NET_TASK]["alpha"]["diff"][0]
    assert "charlie:" in diff["before"] and "charlie:" not in diff["after"]
    assert "charlie" not in tasks[NET_TASK]  # nothing of the deployment runs on charlie


def test_limit_to_the_absent_host_removes_everything_of_the_agent(steps: dict[str, Any]) -> None:
    fleet, run = steps["fleet"], steps["limit"]
    assert set(changed(run)) == {"charlie"} and changed(run)["charlie"] > 0
    assert [e["event"] for e in fleet.events("charlie")][-2:] == ["start", "stop"]  # SIGTERM: it said LEAVE
    assert not steps["limit_link"]
    on_nodes = [p for p in steps["limit_files"] if not p.startswith("ctl/")]
    left = sorted(p for p in on_nodes if "charlie" in p or p.startswith("state/wgc"))
    assert left == ["run/charlie.events", "state/wgc2.lock"], left  # the fake agent's record; not ours
    assert not steps["home"].exists()
    assert (fleet.state / "wga" / "private.key").exists() and (fleet.state / "wgb" / "private.key").exists()
    # The controller forgot it: no key, the certificate revoked and retired.
    assert not (fleet.ctl / "mesh-keys" / "charlie.pub").exists()
    ca = fleet.ctl / "mesh-ca"
    assert not (ca / "issued" / "charlie.crt").exists()
    assert [p.name for p in (ca / "revoked").iterdir()] == [f"charlie-{steps['serial']}.crt"]
    assert steps["serial"] in (ca / "revoked.json").read_text()
    # The other nodes are not in this run; their net.yaml changes with the next full one.
    assert steps["limit_net"] == steps["first_net"]


def test_the_other_nodes_drop_it_and_list_its_certificate_as_revoked(steps: dict[str, Any]) -> None:
    run = steps["full"]
    assert changed(run)["charlie"] == 0  # a second absent run changes nothing
    for host in STAYING:
        net = yaml.safe_load(steps["full_net"][host])
        assert set(net["peers"]) == {"beta"}, host
        assert net["network"]["revokedCerts"] == [steps["serial"]], host
        assert run["tasks"][NET_TASK][host]["changed"]
    assert len(set(steps["full_net"].values())) == 1


def test_a_run_after_changes_nothing(steps: dict[str, Any]) -> None:
    assert changed(steps["again"]) == {"alpha": 0, "beta": 0, "charlie": 0}
