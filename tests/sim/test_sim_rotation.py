"""A shared-key rotation in the simulator, as rotate.yml runs it: phase 1 gives nodes the new
key while they still accept the old one, a few at a time, with some nodes not reached at
first; phase 2, once every node has the new key, drops the old one. Every pair stays
reachable at every step; a node still on the old key alone after phase 2 is cut off, which is
why phase 2 waits for every node."""

from __future__ import annotations

import itertools

import simnet
from simnet import SimNet

NEW = bytes(range(100, 132))


def whole(net: SimNet, hosts: list[str]) -> bool:
    return all(net.reachable(a, b) for a, b in itertools.permutations(hosts, 2))


def hold(net: SimNet, seconds: float, hosts: list[str]) -> None:
    """Run `seconds` of simulated time; every pair must be reachable at every step."""
    end = net.now + seconds
    while net.now < end:
        net.step(0.1)
        assert whole(net, hosts), (net.now, net.unreachable_pairs())


def test_a_rotation_in_two_phases_never_cuts_a_pair_off() -> None:
    net = simnet.seed_basic(SimNet())
    hosts = list(net.hosts)
    net.run_until(net.all_reachable, timeout=10)
    old = net.shared
    # Phase 1, in two batches; delta is not reached by the first run.
    for batch in (["beta", "alpha"], ["charlie"]):
        for name in batch:
            net.hosts[name].node.set_shared_keys(NEW, old)
        hold(net, 15, hosts)
    assert net.hosts["beta"].node.status(net.now)["onPreviousKey"] == ["delta"]
    net.hosts["delta"].node.set_shared_keys(NEW, old)  # a second run reaches it
    hold(net, 15, hosts)
    # What phase 2 waits for: no node hears the old key any more.
    assert all(h.node.status(net.now)["onPreviousKey"] == [] for h in net.hosts.values())
    # Phase 2: every node has the new key; the old one goes, one node at a time.
    for name in hosts:
        net.hosts[name].node.set_shared_keys(NEW)
        hold(net, 5, hosts)
    hold(net, 15, hosts)
    assert all(not h.node.codec.rotating for h in net.hosts.values())


def test_a_node_left_on_the_old_key_alone_is_cut_off_after_phase_2() -> None:
    """Its WireGuard still answers; its HELLOs no longer open: the static node drops it after
    hello_timeout (25 s), and with it every node's peer for it."""
    net = simnet.seed_basic(SimNet())
    net.run_until(net.all_reachable, timeout=10)
    for name in ("alpha", "beta", "charlie"):
        net.hosts[name].node.set_shared_keys(NEW)
    net.run_until(lambda: not net.reachable("alpha", "delta"), timeout=40)
