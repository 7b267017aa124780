"""An exit node for real (issue 13, part 3): beta offers its internet access, alpha uses it.
alpha's traffic to an address of the lab's internet leaves through beta (the far host sees
beta's address, not alpha's), while the tunnel's own packets and the control channel keep
their direct routes (policy routing: every pair of the mesh still answers). When alpha stops
using it, its own default route carries its traffic again and nothing of ours is left.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator

import pytest
from labkit import LabFactory
from meshlab import Mesh, wait_for

from lab import net
from lab.topology import Link, Node

pytestmark = pytest.mark.lab

FAR = "203.0.113.200"  # on the internet, on no network alpha is on: its default route leads there
PORT = 9999
RECEIVER = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    f"s.bind(('0.0.0.0', {PORT}))\n"
    "while True:\n"
    "    data, src = s.recvfrom(100)\n"
    "    print(src[0], flush=True)\n"
    "    s.sendto(data, src)\n"
)


class ExitMesh(Mesh):
    use = True

    def command(self, host: str, wg_ip: str) -> list[str]:
        cmd = super().command(host, wg_ip)
        if host == "beta":
            cmd.append("--exit-node")
        if host == "alpha" and self.use:
            cmd += ["--use-exit-node", "beta"]
        return cmd


@pytest.fixture
def exit_mesh(make_lab: LabFactory) -> Iterator[tuple[ExitMesh, subprocess.Popen[str]]]:
    lab = make_lab("seed-basic")
    far = Node("far", {"eth0": Link("internet", ipaddress.IPv4Interface(f"{FAR}/24"))})
    net.plug(lab.topology, lab.prefix, far, "far")
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", f"{lab.prefix}-far", "python3", "-c", RECEIVER],
        stdout=subprocess.PIPE,
        text=True,
    )
    mesh = ExitMesh(lab)
    try:
        mesh.start_all()
        mesh.wait_started(30)
        yield mesh, receiver
    finally:
        mesh.close()
        receiver.kill()
        receiver.wait(5)


def send(mesh: Mesh, host: str) -> bool:
    """One datagram from `host` to the far host; True if its echo came back."""
    script = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
        f"s.sendto(b'hi', ('{FAR}', {PORT}))\n"
        "try:\n    s.recv(100); print('ok')\nexcept OSError:\n    pass\n"
    )
    res = mesh.lab.host(host).run(["python3", "-c", script], check=False, timeout=10)
    return res.stdout.strip() == "ok"


@pytest.mark.timeout(120)
def test_alphas_internet_traffic_leaves_through_beta(
    exit_mesh: tuple[ExitMesh, subprocess.Popen[str]],
) -> None:
    mesh, receiver = exit_mesh
    wait_for(lambda: (mesh.status("alpha") or {}).get("exitNode", {}).get("active"), 30, 0.2, "exit in use")

    def rules() -> str:
        return mesh.lab.host("alpha").run(["ip", "rule"]).stdout

    wait_for(lambda: "not from all fwmark 0x574e lookup 22350" in rules(), 10, 0.1, "alpha's rules")
    assert "lookup main suppress_prefixlength 0" in rules(), rules()
    assert receiver.stdout is not None
    wait_for(lambda: send(mesh, "alpha"), 20, 0.2, "the far host answers alpha")
    seen = receiver.stdout.readline().strip()
    assert seen == mesh.lab.host("beta").address, f"the far host saw {seen}, not beta"
    wait_for(mesh.all_ping, 30, 0.2, "every pair still answers (the tunnel keeps its direct routes)")
    assert (mesh.status("beta") or {})["exitNode"] == {"offers": True, "uses": None, "active": False}

    assert mesh.stop("alpha") == 0  # stopping takes it all away again
    assert "22350" not in rules(), rules()
    assert (
        not mesh.lab.host("alpha").run(["ip", "route", "show", "table", "22350"], check=False).stdout.strip()
    )
    mesh.use = False
    mesh.start("alpha")
    mesh.wait_started(30)
    wait_for(lambda: send(mesh, "alpha"), 20, 0.2, "the far host answers alpha directly")
    assert receiver.stdout.readline().strip() == mesh.lab.host("alpha").address
