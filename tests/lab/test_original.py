"""The original Rust wg_netmanager's files and command lines, on real agents in the lab.

net.yaml in the original's list form (no names, `subnet: 10.1.1.0/8` with host bits, an
explicit adminPort), some agents started with the positional `-c FILE INTERFACE WG_IP NAME`,
some with `-i -a -n`, one that learns its static node from `--static-peer` only.
"""

from __future__ import annotations

from typing import Any

import pytest
from meshlab import PYTHON, SEED_BASIC_PATHS, Mesh, wait_for

pytestmark = pytest.mark.lab

ADMIN_PORT = 55555  # the original's example: not the WireGuard port + 1


class OriginalMesh(Mesh):
    """Configs and command lines as a user of the original writes them."""

    positional = {"alpha", "charlie"}
    cli_static = "delta"  # its net.yaml lists no peers: its static node comes from -s

    def net_yaml(self) -> dict[str, Any]:
        peers = []
        for h in self.hosts:
            ep = self.vars[h].get("wg_static_endpoint")
            if ep:
                peers.append({"endPoint": ep, "adminPort": ADMIN_PORT, "wgIp": self.wg_ip(h)})
        return {"network": {"sharedKey": self.shared_key, "subnet": "10.1.1.0/8"}, "peers": peers}

    def write_configs(self, host: str, net: dict[str, Any] | None = None) -> None:
        if net is None and host == self.cli_static:
            net = {**self.net_yaml(), "peers": []}
        super().write_configs(host, net)

    def command(self, host: str, wg_ip: str) -> list[str]:
        cmd = [PYTHON, "-m", "wg_netmanager", "-c", "/etc/wg_netmanager/net.yaml"]
        cmd += ["wg0", wg_ip, host] if host in self.positional else ["-i", "wg0", "-a", wg_ip, "-n", host]
        if host == self.cli_static:
            for peer in super().net_yaml()["peers"].values():
                spec = f"endPoint={peer['endPoint']},wgIp={peer['wgIp']},adminPort={ADMIN_PORT}"
                cmd += ["--static-peer", spec]
        return [*cmd, "-v"]


def assert_clean_logs(mesh: Mesh) -> None:
    for host in mesh.hosts:
        log = mesh.log(host)
        assert "Traceback" not in log and mesh.shared_key not in log, host
        # the original's example subnet: one warning naming file and field, then it runs
        assert log.count("network.subnet: warning: host bits set in '10.1.1.0/8', using 10.0.0.0/8") == 1


def test_seed_basic_from_the_originals_files_and_command_lines(mesh_on: Any) -> None:
    mesh = mesh_on("seed-basic", cls=OriginalMesh)
    wait_for(mesh.all_ping, 20, what="every pair pings")
    mesh.wait_paths(SEED_BASIC_PATHS)
    for host in mesh.hosts:  # the static node is known by the name it runs with, everywhere
        st = mesh.status(host)
        assert st is not None and st["converged"], st
        assert st["static"] == (host == "beta")
        assert {p["name"] for p in st["peers"]} == set(mesh.hosts) - {host}
    assert mesh.paths("alpha")["beta"] == "static"
    assert_clean_logs(mesh)


def test_double_nat_example_from_the_originals_files(mesh_on: Any) -> None:
    """The original's second example: delta and echo behind router2, itself behind router1."""
    mesh = mesh_on("seed-double-nat", cls=OriginalMesh)
    wait_for(mesh.all_ping, 20, what="every pair pings")
    mesh.wait_paths(
        [
            ("delta", "echo", "lan"),
            ("alpha", "charlie", "nat"),
            ("alpha", "delta", "nat"),
            ("alpha", "echo", "nat"),
        ]
    )
    assert mesh.paths("charlie")["beta"] == "static"
    assert_clean_logs(mesh)
