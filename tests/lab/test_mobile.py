"""A data-limited mobile node for real (issue 13, part 4): delta runs `--mode mobile` on the
home LAN it shares with charlie. Idle, it sends about one datagram per 25 s (a HELLO through
the tunnel to its one static node) where charlie, a normal node, sends many; every pair is
reachable all the same (through beta). Traffic with charlie makes the LAN path within
seconds; once it stops, delta goes back through beta.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from labkit import LabFactory
from meshlab import Mesh, wait_for

pytestmark = pytest.mark.lab

IDLE = 50.0  # seconds of idle measured
METER = (
    "table ip wgnm_meter {\n"
    "  chain o { type filter hook output priority 0; policy accept;"
    ' oifname != { "wg0", "lo" } meta l4proto udp counter; }\n'
    "  chain i { type filter hook input priority 0; policy accept;"
    ' iifname != { "wg0", "lo" } meta l4proto udp counter; }\n'
    "}\n"
)


class MobileMesh(Mesh):
    def command(self, host: str, wg_ip: str) -> list[str]:
        return super().command(host, wg_ip) + (["--mode", "mobile"] if host == "delta" else [])


@pytest.fixture
def mobile_mesh(make_lab: LabFactory) -> Iterator[MobileMesh]:
    mesh = MobileMesh(make_lab("seed-basic"))
    try:
        mesh.start_all()
        mesh.wait_started(30)
        yield mesh
    finally:
        mesh.close()


def udp_counts(mesh: Mesh, host: str) -> list[int]:
    """[datagrams sent, bytes, received, bytes] outside the tunnel since the meter went on."""
    out = mesh.lab.host(host).run(["nft", "list", "table", "ip", "wgnm_meter"]).stdout
    counts = [int(w) for line in out.splitlines() if "counter" in line for w in line.split()[-3::2]]
    return counts


def paths_of(mesh: Mesh, host: str) -> dict[str, str]:
    return mesh.paths(host)


@pytest.mark.timeout(240)
def test_an_idle_mobile_node_is_quiet_and_traffic_makes_its_direct_path(mobile_mesh: MobileMesh) -> None:
    mesh = mobile_mesh
    others = ["alpha", "beta", "charlie"]
    wait_for(
        lambda: (st := mesh.status("delta")) and st.get("converged") and st.get("mobile") == {"active": []},
        30,
        0.5,
        "delta converged, through beta",
    )
    assert paths_of(mesh, "delta") == {"alpha": "gateway", "beta": "static", "charlie": "gateway"}
    tunneled = lambda: (mesh.status("delta") or {}).get("staticNodes", {}).get("beta", {}).get("tunneled")  # noqa: E731
    wait_for(tunneled, 30, 0.5, "delta's HELLOs through the tunnel")
    for host in ("delta", "charlie"):
        mesh.lab.host(host).run(["nft", "-f", "-"], input=METER)
    start = time.monotonic()
    time.sleep(IDLE)  # a measuring window, not a wait for something to happen
    took = time.monotonic() - start
    delta, charlie = udp_counts(mesh, "delta"), udp_counts(mesh, "charlie")
    print(f"idle {took:.0f} s: delta (mobile) {delta}, charlie (normal) {charlie}")
    assert delta[0] <= took / 25 + 2, delta  # a HELLO every 25 s (and a WireGuard rekey)
    assert charlie[0] > 5 * delta[0], (charlie, delta)
    assert paths_of(mesh, "charlie")["delta"] == "gateway"

    pinger = mesh.lab.host("delta").popen(
        ["ping", "-n", "-i", "0.2", mesh.wg_ip("charlie")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        direct = wait_for(lambda: mesh.both_ways("delta", "charlie", "lan"), 10, 0.2, "the LAN path")
        print(f"first packet to a LAN path both ways: {direct:.1f} s")
        st = mesh.status("delta") or {}
        assert st["mobile"] == {"active": ["charlie"]}
        assert paths_of(mesh, "delta")["alpha"] == "gateway"  # no traffic with alpha
    finally:
        pinger.terminate()
        pinger.wait(5)
    wait_for(lambda: mesh.both_ways("delta", "charlie", "gateway"), 60, 0.5, "back through beta")
    for other in others:
        assert mesh.ping("delta", other, timeout=2) is not None, other
