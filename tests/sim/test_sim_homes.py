"""Home static nodes: a node that is not static talks to two static nodes of its own ranking
(rendezvous hashing), however many there are; each static node's table lists the whole mesh
(its own members and, passed on, those of the others), so every node still learns every
other. A lost home is replaced by the next in the ranking within the hub timeout."""

from __future__ import annotations

import simnet
from simnet import SimNet


def mesh(n: int = 60, statics: int = 6) -> SimNet:
    net = simnet.scale(SimNet(seed=5), n, statics)
    net.run_until(net.all_reachable, timeout=30, dt=0.25)
    return net


def homes(net: SimNet, name: str) -> list[str]:
    node = net.hosts[name].node
    return sorted(n for n, link in node.links.items() if link.asked_since is not None)


def test_each_node_talks_to_two_static_nodes_and_knows_everyone() -> None:
    net = mesh()
    members = [h for h in net.hosts.values() if not h.node.p.is_static]
    for h in members:
        assert len(homes(net, h.name)) == 2, (h.name, homes(net, h.name))
        assert len(h.node.view) == len(net.hosts) - 1
    spread = {name: 0 for name in net.hosts if name.startswith("s")}
    for h in members:
        for name in homes(net, h.name):
            spread[name] += 1
    assert min(spread.values()) >= 5, spread  # rendezvous hashing spreads them
    for h in net.hosts.values():  # static nodes talk to every other static node
        if h.node.p.is_static:
            assert len(homes(net, h.name)) == 5
    packets = net.admin_packets
    for _ in range(40):
        net.step(0.25)
    per_node = (net.admin_packets - packets) / 10 / len(net.hosts)
    assert per_node < 6, per_node  # 2 HELLOs and 2 answers a second, not 2 x 6


def test_a_lost_home_is_replaced_and_everyone_stays_reachable() -> None:
    net = mesh()
    victim = "s0"
    orphans = [h.name for h in net.hosts.values() if victim in homes(net, h.name) and h.name[0] == "n"]
    assert orphans
    net.hosts[victim].alive = False
    alive = [n for n in net.hosts if n != victim]

    def whole() -> bool:
        return all(net.reachable(a, b) for a in alive for b in alive if a != b)

    t = net.run_until(whole, timeout=20, dt=0.25)
    for name in orphans:
        assert victim in homes(net, name) or len(homes(net, name)) == 3, homes(net, name)
    assert t < 15, t
