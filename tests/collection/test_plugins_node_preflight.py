"""module_utils/node_preflight.py and the node_preflight module: who holds the agent's
interface and UDP ports, against a /proc tree made in a temporary directory and real sockets."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.wg_netmanager.mesh.plugins.module_utils import node_preflight as np

from wg_netmanager.core import config as agent_config

pytestmark = pytest.mark.collection

VENV = "/opt/wg_netmanager/venv"
AGENT = [f"{VENV}/bin/python3", f"{VENV}/bin/wg_netmanager", "-c", "/etc/wg_netmanager/net.yaml"]


@pytest.mark.parametrize("name", ["alice", "bob", "h001", "node-with-a-long-name", ""])
def test_derived_ports_are_the_agents(name: str) -> None:
    wg = agent_config.dynamic_port(name)
    assert np.dynamic_port(name) == wg
    assert np.agent_ports(name, 0, 0) == {"wg_port": wg, "admin_port": agent_config.default_admin_port(wg)}


@pytest.mark.parametrize("port", [1, 51820, 65534, 65535])
def test_default_admin_port_is_the_agents(port: int) -> None:
    assert np.default_admin_port(port) == agent_config.default_admin_port(port)
    assert np.agent_ports("x", port, 7) == {"wg_port": port, "admin_port": 7}


class FakeProc:
    """A /proc with UDP sockets (net/udp) and processes holding them (PID/fd, PID/cmdline)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "net").mkdir(parents=True)
        self.rows: list[str] = []
        self._write()

    def _write(self) -> None:
        header = (
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
        )
        (self.root / "net" / "udp").write_text("\n".join([header, *self.rows]) + "\n")

    def bind(self, port: int, inode: int, pid: int | None = None, cmdline: list[str] | None = None) -> None:
        n = len(self.rows)
        self.rows.append(
            f"{n:5d}: 00000000:{port:04X} 00000000:0000 07 00000000:00000000 00:00000000 00000000"
            f"     0        0 {inode} 2 0000000000000000 0"
        )
        self._write()
        if pid is not None:
            fd_dir = self.root / str(pid) / "fd"
            fd_dir.mkdir(parents=True, exist_ok=True)
            os.symlink(f"socket:[{inode}]", fd_dir / str(len(list(fd_dir.iterdir())) + 3))
            (self.root / str(pid) / "cmdline").write_bytes(
                b"\0".join(a.encode() for a in cmdline or []) + b"\0"
            )


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


def check(proc: FakeProc, tmp_path: Path, exists: bool = False, marker: bool = False, **kw: Any) -> Any:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    if marker:
        (state / "wg0.created.json").write_text(json.dumps({"ifname": "wg0", "backend": "wireguard-go"}))
    return np.check_node(
        "wg0",
        kw.pop("existing_interface", False),
        kw.pop("ports", {"wg_port": 51820, "admin_port": 51821}),
        VENV,
        state_dir=str(state),
        proc=str(proc.root),
        exists=lambda name: exists,
    )


def test_nothing_there_is_no_conflict(proc: FakeProc, tmp_path: Path) -> None:
    result = check(proc, tmp_path)
    assert result["conflicts"] == []
    assert result["interface"] == {"name": "wg0", "exists": False, "ours": True, "marker": False}
    assert [(p["var"], p["in_use"], p["ours"]) for p in result["ports"]] == [
        ("admin_port", False, True),
        ("wg_port", False, True),
    ]


def test_a_foreign_interface_is_a_conflict(proc: FakeProc, tmp_path: Path) -> None:
    result = check(proc, tmp_path, exists=True)
    assert len(result["conflicts"]) == 1
    assert "interface wg0 already exists and was not created by wg_netmanager" in result["conflicts"][0]
    assert "wg_existing_interface" in result["conflicts"][0]


def test_our_running_mesh_is_no_conflict(proc: FakeProc, tmp_path: Path) -> None:
    proc.bind(51820, 1001, pid=40, cmdline=["/usr/bin/wireguard-go", "wg0"])
    proc.bind(51821, 1002, pid=41, cmdline=AGENT)
    result = check(proc, tmp_path, exists=True, marker=True)
    assert result["conflicts"] == []
    assert all(p["in_use"] and p["ours"] for p in result["ports"])


def test_kernel_wireguard_of_our_interface_is_no_conflict(proc: FakeProc, tmp_path: Path) -> None:
    proc.bind(51820, 0)
    assert check(proc, tmp_path, exists=True, marker=True)["conflicts"] == []


def test_a_port_held_by_another_program_names_it(proc: FakeProc, tmp_path: Path) -> None:
    proc.bind(51821, 2001, pid=77, cmdline=["/usr/sbin/named", "-u", "bind"])
    (conflict,) = check(proc, tmp_path)["conflicts"]
    assert conflict == (
        "UDP port 51821 (admin_port) is in use by PID 77 (/usr/sbin/named -u bind): stop it or choose "
        "another admin_port"
    )


def test_another_interfaces_daemon_or_kernel_socket_is_a_conflict(proc: FakeProc, tmp_path: Path) -> None:
    proc.bind(51820, 3001, pid=50, cmdline=["/usr/bin/wireguard-go", "wg1"])
    (conflict,) = check(proc, tmp_path, exists=True, marker=True)["conflicts"]
    assert "PID 50 (/usr/bin/wireguard-go wg1)" in conflict and "wg_port" in conflict
    proc.rows.clear()
    proc.bind(51821, 0)
    (conflict,) = check(proc, tmp_path)["conflicts"]
    assert "UDP port 51821 (admin_port) is held by the kernel" in conflict


def test_a_socket_of_an_invisible_process_is_a_conflict(proc: FakeProc, tmp_path: Path) -> None:
    proc.bind(51820, 4001)
    (conflict,) = check(proc, tmp_path)["conflicts"]
    assert "cannot see" in conflict


def test_existing_interface_must_exist(proc: FakeProc, tmp_path: Path) -> None:
    (conflict,) = check(proc, tmp_path, existing_interface=True)["conflicts"]
    assert "wg_existing_interface is true but interface wg0 does not exist" in conflict
    assert check(proc, tmp_path, exists=True, existing_interface=True)["conflicts"] == []


def test_without_proc_only_the_interface_is_checked(tmp_path: Path) -> None:
    result = np.check_node(
        "wg0", False, {"wg_port": 1}, VENV, state_dir=str(tmp_path), proc=str(tmp_path / "none"),
        exists=lambda name: False,
    )  # fmt: skip
    assert result["ports_checked"] is False and result["conflicts"] == []


@pytest.fixture
def udp_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_real_socket_is_found_with_its_process(udp_port: int) -> None:
    result = np.check_node("wgnm-no-such0", False, {"admin_port": udp_port}, "/nonexistent/venv")
    (port,) = result["ports"]
    assert port["in_use"] and not port["ours"]
    assert [h["pid"] for h in port["holders"]] == [os.getpid()]
    # The same socket held by "the agent": a program run from the venv's bin/ (this Python).
    first_arg = np.read_cmdline(os.getpid())[0]
    venv = os.path.dirname(os.path.dirname(first_arg))
    assert np.check_node("wgnm-no-such0", False, {"admin_port": udp_port}, venv)["conflicts"] == []


def test_module_fails_once_with_every_conflict(run_adhoc: Any, udp_port: int, tmp_path: Path) -> None:
    args = {"name": "alice", "wg_port": udp_port, "admin_port": udp_port + 1, "interface": "lo"}
    args["state_dir"] = str(tmp_path)
    result, _ = run_adhoc("wg_netmanager.mesh.node_preflight", args, "--check")
    assert result["failed"] is True
    assert "interface lo already exists" in result["msg"]
    assert f"UDP port {udp_port} (wg_port) is in use by PID" in result["msg"]
    assert len(result["conflicts"]) == 2
    args["fail_on_conflict"] = False
    result, _ = run_adhoc("wg_netmanager.mesh.node_preflight", args)
    assert not result.get("failed") and result["changed"] is False and len(result["conflicts"]) == 2


def test_the_marker_of_an_older_deployment_counts(proc: FakeProc, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "wg0.created.json").write_text(json.dumps({"ifname": "wg0", "backend": "kernel"}))
    found = np.check_node(
        "wg0", False, {}, VENV, state_dir=str(tmp_path / "state"), proc=str(proc.root),
        exists=lambda name: True, legacy_state_dir=str(legacy),
    )  # fmt: skip
    assert found["conflicts"] == [] and found["interface"]["marker"] is True
    assert check(proc, tmp_path, exists=True)["conflicts"] != []  # without it, the same is foreign


def test_a_foreign_interface_names_the_daemon_that_runs_it(proc: FakeProc, tmp_path: Path) -> None:
    proc.bind(51999, 5001, pid=60, cmdline=["/usr/bin/wireguard-go", "wg0"])
    proc.bind(51998, 5002, pid=61, cmdline=["/usr/bin/wireguard-go", "wg1"])
    (conflict,) = check(proc, tmp_path, exists=True)["conflicts"]
    assert conflict.startswith("interface wg0 already exists, run by PID 60 (/usr/bin/wireguard-go wg0), and")


NETNS_CHECK = """
import json, sys
from ansible_collections.wg_netmanager.mesh.plugins.module_utils.node_preflight import check_node
print(json.dumps(check_node(sys.argv[1], False, {}, "/nonexistent/venv", state_dir=sys.argv[2])))
"""


@pytest.fixture
def netns_link() -> Iterator[tuple[str, str]]:
    """A throwaway network namespace with a link in it that the agent did not make (veth: this
    kernel has no dummy module)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip")
    netns = f"wgnmt-pf-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run(
            ["ip", "-n", netns, "link", "add", "wgnmt0", "type", "veth", "peer", "name", "wgnmt1"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        yield netns, "wgnmt0"
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)


def test_a_link_the_agent_did_not_make_in_a_namespace(netns_link: tuple[str, str], tmp_path: Path) -> None:
    netns, link = netns_link

    def check_in_netns(ifname: str) -> dict[str, Any]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        argv = ["ip", "netns", "exec", netns, sys.executable, "-c", NETNS_CHECK, ifname, str(tmp_path)]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
        return json.loads(done.stdout)

    (conflict,) = check_in_netns(link)["conflicts"]
    assert conflict.startswith(f"interface {link} already exists and was not created by wg_netmanager")
    assert check_in_netns("wgnmt9")["conflicts"] == []  # not there: the agent may make it
    # Here, outside the namespace, there is no such link.
    assert np.check_node(link, False, {}, VENV, state_dir=str(tmp_path))["conflicts"] == []
    # The agent's own interface, from an earlier run: its marker makes it ours.
    (tmp_path / f"{link}.created.json").write_text(json.dumps({"ifname": link, "backend": "kernel"}))
    found = check_in_netns(link)
    assert found["conflicts"] == []
    assert found["interface"] == {"name": link, "exists": True, "ours": True, "marker": True}
