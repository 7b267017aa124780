"""A leaf for real (issue 13, part 2): a phone that runs no agent, only wireguard-go configured
with `wg setconf` from a wg-quick file, on the home LAN behind the (cone) NAT router of
seed-basic, with beta as its home. It pings every node of the mesh; alpha (the firewalled VPS)
pings it back, through beta. The phone is a namespace of the lab's prefix, so the lab's
teardown removes it and its wireguard-go.
"""

from __future__ import annotations

import base64
import ipaddress
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from labkit import LabFactory
from meshlab import Mesh, wait_for

from lab import net
from lab.topology import Link, Node

pytestmark = pytest.mark.lab

PHONE_IP = "10.1.1.50"
PHONE_LAN = "192.168.1.50/24"
NODES = ["alpha", "beta", "charlie", "delta"]


def keypair() -> tuple[str, str]:
    key = X25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


class LeafMesh(Mesh):
    phone_key = ""

    def net_yaml(self) -> dict[str, Any]:
        doc = super().net_yaml()
        doc["leaves"] = {"phone": {"publicKey": self.phone_key, "wgIp": PHONE_IP, "home": "beta"}}
        return doc


def wg_quick(private: str, home_key: str) -> str:
    """What the collection renders for a phone (wg-quick's format)."""
    return (
        "[Interface]\n"
        f"PrivateKey = {private}\n"
        f"Address = {PHONE_IP}/24\n"
        "\n[Peer]\n"
        f"PublicKey = {home_key}\n"
        "Endpoint = 198.51.100.2:50000\n"
        "AllowedIPs = 10.1.1.0/24\n"
        "PersistentKeepalive = 25\n"
    )


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


@pytest.fixture
def leaf_mesh(make_lab: LabFactory) -> Iterator[tuple[LeafMesh, str]]:
    lab = make_lab("seed-basic")
    mesh = LeafMesh(lab)
    private, mesh.phone_key = keypair()
    try:
        mesh.start_all()
        mesh.wait_started(30)
        home_key = (mesh.status("beta") or {})["publicKey"]
        yield mesh, start_phone(mesh, wg_quick(private, home_key))
    finally:
        mesh.close()


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
