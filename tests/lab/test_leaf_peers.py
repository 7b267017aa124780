"""A leaf for real (issue 13, part 2): a phone that runs no agent, only wireguard-go configured
with `wg setconf` from the wg-quick file the collection renders (its module_utils, fed the lab's
inventory variables as the role feeds them), on the home LAN behind the (cone) NAT router of
seed-basic, with beta as its home. It pings every node of the mesh; alpha (the firewalled VPS)
pings it back, through beta. The phone is a namespace of the lab's prefix, so the lab's
teardown removes it and its wireguard-go.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import LabFactory
from meshlab import Mesh, wait_for

from lab import net
from lab.topology import Link, Node

pytestmark = pytest.mark.lab

PHONE_IP = "10.1.1.50"
PHONE_LAN = "192.168.1.50/24"
NODES = ["alpha", "beta", "charlie", "delta"]
REPO = Path(__file__).resolve().parents[2]


class LeafMesh(Mesh):
    phone_key = ""

    def net_yaml(self) -> dict[str, Any]:
        doc = super().net_yaml()
        if self.phone_key:
            doc["leaves"] = {"phone": {"publicKey": self.phone_key, "wgIp": PHONE_IP, "home": "beta"}}
        return doc


@contextlib.contextmanager
def collection() -> Iterator[None]:
    """The collection's module_utils, importable as Ansible imports them: a temporary
    ansible_collections/wg_netmanager/mesh that is this repository."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "ansible_collections" / "wg_netmanager"
        tree.mkdir(parents=True)
        (tree / "mesh").symlink_to(REPO)
        sys.path.insert(0, tmp)
        try:
            yield
        finally:
            sys.path.remove(tmp)


def module_utils(name: str) -> Any:
    return importlib.import_module(f"ansible_collections.wg_netmanager.mesh.plugins.module_utils.{name}")


def rendered_leaf(mesh: Mesh, keys: Path) -> tuple[dict[str, Any], str]:
    """What the collection makes for the phone, from the lab's inventory variables: its checked
    spec (validate_leaves, as roles/agent/tasks/mesh.yml) and its key (leaf_key's ensure_key)."""
    utils, mv, files = (module_utils(n) for n in ("leaves", "mesh_validate", "leaf_files"))
    nodes = [
        {"host": h, "wg_ip": mesh.wg_ip(h), "static_endpoint": mesh.vars[h].get("wg_static_endpoint")}
        for h in mesh.hosts
    ]
    checked = mv.validate_mesh(mesh.subnet, nodes)
    leaves = utils.validate_leaves(
        mesh.subnet, checked["nodes"], [{"host": "phone", "wg_ip": PHONE_IP, "home": "beta"}]
    )
    assert checked["problems"] == leaves["problems"] == [], (checked["problems"], leaves["problems"])
    return leaves["leaves"][0], files.ensure_key(str(keys), "phone", check=False)["public_key"]


def render_config(spec: dict[str, Any], keys: Path, home_key: str) -> str:
    """The phone's wg-quick file as leaf_config writes it (0600), with the home's key."""
    files = module_utils("leaf_files")
    settings = {k: spec[k] for k in ("address", "endpoint", "allowed_ips", "dns", "keepalive")}
    out = files.ensure_config(str(keys), "phone", check=False, peer_public_key=home_key, qr=False, **settings)
    path = Path(out["config_file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text()


def setconf_form(conf: str) -> str:
    """wg-quick's file without the keys `wg setconf` does not know (Address, DNS, ...)."""
    drop = ("address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown", "saveconfig")
    return "".join(ln + "\n" for ln in conf.splitlines() if ln.split("=")[0].strip().lower() not in drop)


def ns_run(ns: str, *argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], text=True, capture_output=True, **kw)


def start_phone(mesh: Mesh, conf: str) -> str:
    lab = mesh.lab
    net.plug(
        lab.topology,
        lab.prefix,
        Node("phone", {"eth0": Link("home", ipaddress.IPv4Interface(PHONE_LAN))}),
        "phone",
    )
    ns = f"{lab.prefix}-phone"
    env = {"WG_PROCESS_FOREGROUND": "1", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"}
    subprocess.Popen(
        ["ip", "netns", "exec", ns, "wireguard-go", "wgl0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: ns_run(ns, "wg", "show", "wgl0").returncode == 0, 10, 0.05, "wireguard-go up")
    ns_run(ns, "wg", "setconf", "wgl0", "/dev/stdin", input=setconf_form(conf), check=True)
    ns_run(ns, "ip", "addr", "add", f"{PHONE_IP}/24", "dev", "wgl0", check=True)
    ns_run(ns, "ip", "link", "set", "wgl0", "up", check=True)
    return ns


@pytest.fixture(params=["at start", "by reload"])
def leaf_mesh(make_lab: LabFactory, tmp_path: Path, request: Any) -> Iterator[tuple[LeafMesh, str]]:
    """The mesh with the phone in net.yaml from the start, or added later: net.yaml rewritten
    and every agent sent SIGHUP (what the collection does for a new leaf)."""
    lab = make_lab("seed-basic")
    mesh = LeafMesh(lab)
    keys = tmp_path / "leaves"
    with contextlib.ExitStack() as stack:
        stack.enter_context(collection())
        spec, key = rendered_leaf(mesh, keys)
        stack.callback(mesh.close)
        mesh.phone_key = key if request.param == "at start" else ""
        mesh.start_all()
        mesh.wait_started(30)
        if not mesh.phone_key:
            mesh.phone_key = key
            pids = {h: mesh.procs[h].pid for h in mesh.hosts}
            for host in mesh.hosts:
                mesh.write_configs(host)
                mesh.procs[host].send_signal(signal.SIGHUP)
            wait_for(
                lambda: all(
                    "phone" in mesh.log(h) and "reload: leaves now phone" in mesh.log(h) for h in mesh.hosts
                ),
                10,
                0.1,
                "every agent reloaded the leaf",
            )
            assert {h: mesh.procs[h].pid for h in mesh.hosts} == pids  # reloaded, not restarted
        conf = render_config(spec, keys, (mesh.status("beta") or {})["publicKey"])
        assert f"Endpoint = {mesh.vars['beta']['wg_static_endpoint']}" in conf, conf
        yield mesh, start_phone(mesh, conf)


def pings(ns_or_host: Any, ip: str) -> bool:
    return ns_or_host(["ping", "-n", "-c1", "-W", "1", ip]).returncode == 0


@pytest.mark.timeout(120)
def test_a_phone_without_an_agent_reaches_every_node_through_its_home(
    leaf_mesh: tuple[LeafMesh, str],
) -> None:
    mesh, ns = leaf_mesh

    def from_phone(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return ns_run(ns, *argv, timeout=10)

    took = wait_for(
        lambda: all(pings(from_phone, mesh.wg_ip(h)) for h in NODES), 60, 0.2, "the phone pings every node"
    )
    print(f"\nthe phone pings every node {took:.1f} s after its wireguard-go was configured")
    assert pings(lambda argv: mesh.lab.host("alpha").run(argv, check=False, timeout=10), PHONE_IP)
    beta = (mesh.status("beta") or {})["leaves"]
    assert beta[0]["name"] == "phone" and beta[0]["path"] == "nat" and beta[0]["endpoint"], beta
    alpha = (mesh.status("alpha") or {})["leaves"]
    assert (alpha[0]["path"], alpha[0]["gateway"]) == ("gateway", "beta"), alpha
