"""Liveness from WireGuard: a node and its static nodes keep each other's WireGuard peers
alive with keepalives, and what WireGuard received says the other side is there. HELLOs
carry changes: every second while something is unsettled, every idle heartbeat (10 s)
once it is not. A node whose HELLOs stop but whose WireGuard runs is dropped after the
HELLO timeout; a node that moves re-creates its static peers, so they learn where it is at
once."""

from __future__ import annotations

from ipaddress import IPv4Interface

import simnet
from simnet import SimNet


def settled() -> SimNet:
    net = simnet.seed_basic(SimNet())
    net.run_until(net.all_reachable, timeout=10)
    for _ in range(150):  # 15 s: probing done, every HELLO in step
        net.step()
    return net


def test_a_settled_node_says_hello_once_per_idle_heartbeat() -> None:
    net = settled()
    before = dict(net.admin_sent)
    for _ in range(300):  # 30 s
        net.step()
        assert net.all_reachable(), net.unreachable_pairs()
    for name in ("alpha", "charlie", "delta"):  # one static node (beta): a HELLO per 10 s
        assert net.admin_sent[name] - before[name] <= 4, (name, net.admin_sent[name] - before[name])
    assert net.admin_sent["beta"] - before["beta"] <= 12  # their answers


def test_a_member_whose_hellos_are_lost_stays_while_its_wireguard_is_heard() -> None:
    net = settled()
    net.muted.add("delta")
    for _ in range(200):  # 20 s: twice the member timeout, within the HELLO timeout
        net.step()
        assert net.all_reachable(), net.unreachable_pairs()
    net.run_until(lambda: not net.reachable("alpha", "delta"), timeout=10)  # 25 s: dropped


def test_a_static_node_whose_answers_are_lost_stays_while_its_wireguard_is_heard() -> None:
    net = settled()
    net.muted.add("beta")
    for _ in range(150):  # 15 s: well past the hub timeout (5.5 s)
        net.step()
        assert net.all_reachable(), net.unreachable_pairs()
        assert net.path("charlie", "beta") == "static"


def test_a_silent_static_node_is_dropped_within_the_hub_timeout() -> None:
    net = settled()
    net.hosts["beta"].alive = False  # WireGuard and agent
    net.run_until(lambda: net.path("charlie", "beta") == "none", timeout=6.5)


def test_moving_re_creates_the_static_peers() -> None:
    net = settled()
    node = net.hosts["charlie"].node
    before = {p.public_key: p.generation for p in node.desired(net.now).peers}
    node.set_locals([IPv4Interface("192.168.1.33/24")])  # the address the lab's roaming test takes
    node.tick(net.now)
    after = {p.public_key: p.generation for p in node.desired(net.now).peers}
    beta = next(k for k, info in node.view.items() if info.name == "beta")
    assert after[beta] == before[beta] + 1
