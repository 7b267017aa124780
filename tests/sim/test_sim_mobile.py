"""A data-limited mobile node (core/mobile.py), simulated: idle, one small datagram every 25 s
to its one home, through the tunnel; no direct path to anyone until it has traffic with a
peer, then one within seconds, and back through the home once the traffic stops."""

from __future__ import annotations

from ipaddress import IPv4Address

import simnet
from simnet import SimNet

HOUR_SHARE = 600.0  # simulated seconds of idle measured


def mesh() -> SimNet:
    net = simnet.seed_basic(SimNet(seed=3))
    net.add_host("echo", "192.168.7.5", "10.1.1.5", nat=net.add_nat("203.0.113.20"), mobile=True)
    net.run_until(net.all_reachable, timeout=15)
    return net


def idle(net: SimNet, seconds: float) -> dict[str, list[int]]:
    """Each host's [sent, bytes, received, bytes] over `seconds` of a settled mesh."""
    before = {k: list(v) for k, v in net.traffic.items()}
    start = net.now
    while net.now - start < seconds:
        net.step(0.5)
        assert net.all_reachable(), net.unreachable_pairs()
    return {k: [a - b for a, b in zip(v, before.get(k, [0, 0, 0, 0]))] for k, v in net.traffic.items()}


def test_an_idle_mobile_node_sends_one_datagram_per_25_s_and_stays_reachable() -> None:
    net = mesh()
    for _ in range(120):  # settle: the first HELLOs, the tunnel, the idle heartbeat
        net.step(0.5)
    counts = idle(net, HOUR_SHARE)
    echo, charlie = counts["echo"], counts["charlie"]
    per_25s = HOUR_SHARE / 25
    assert echo[0] <= per_25s + 2, echo  # sent: a HELLO through the tunnel, every 25 s
    assert echo[2] <= per_25s + 2, echo  # received: its answer
    assert charlie[0] > 5 * echo[0], (charlie, echo)  # a normal node: keepalives, HELLOs, paths
    home = net.hosts["echo"].node.links["beta"]
    assert home.tunneled
    for peer in ("alpha", "charlie", "delta"):
        assert net.path("echo", peer) == "gateway"
        assert net.path(peer, "echo") == "gateway"


def test_traffic_with_a_peer_makes_a_direct_path_and_its_end_makes_it_idle_again() -> None:
    net = mesh()
    for _ in range(60):
        net.step(0.5)
    echo = net.hosts["echo"].node
    echo.set_active(frozenset({IPv4Address("10.1.1.3")}))  # traffic with charlie starts
    took = net.run_until(
        lambda: net.path("echo", "charlie") == "nat" and net.path("charlie", "echo") == "nat", 5
    )
    assert took <= 3.0, took
    assert net.path("echo", "delta") == "gateway"  # no traffic with delta: not probed
    assert net.all_reachable()
    echo.set_active(frozenset())  # ACTIVE_FOR after the last packet
    net.run_until(
        lambda: net.path("echo", "charlie") == "gateway" and net.path("charlie", "echo") == "gateway", 5
    )
    net.run_until(net.all_reachable, timeout=5)
