"""A reload (SIGHUP) that changes the static nodes: every node takes the new list while it
runs (`Node.set_statics`), with no pair of nodes losing its path meanwhile and no WireGuard
peer of an unchanged link or path made again. Whether a node is itself a static node cannot
change while it runs."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
import simnet
from simnet import ADMIN_PORT, WG_PORT, SimNet

from wg_netmanager.core.hublink import StaticNode

ECHO = StaticNode("echo", IPv4Address("10.1.1.5"), "198.51.100.5", WG_PORT, ADMIN_PORT)


def settled(net: SimNet) -> SimNet:
    net.run_until(net.all_reachable, timeout=10)
    for _ in range(150):  # 15 s: probing done, every HELLO in step
        net.step()
    return net


def wg_peers(net: SimNet) -> dict[str, dict[str, int]]:
    """Per host, its WireGuard peers and the generation each was made in."""
    return {name: {k: h.wg_generations.get(k, 0) for k in h.wg} for name, h in net.hosts.items()}


def reload_all(net: SimNet, statics: tuple[StaticNode, ...], *, skip: tuple[str, ...] = ()) -> None:
    for name, host in net.hosts.items():
        if name not in skip:
            assert host.node.set_statics(statics, net.now)


def run_checked(net: SimNet, seconds: float) -> None:
    for _ in range(int(seconds * 10)):
        net.step()
        assert net.all_reachable(), net.unreachable_pairs()


def test_a_static_node_added_by_a_reload_serves_every_node_and_nothing_is_torn_down() -> None:
    net = settled(simnet.seed_basic(SimNet()))
    before = wg_peers(net)
    net.statics.append(ECHO)  # the new static node starts with the new list...
    net.add_host("echo", "198.51.100.5", "10.1.1.5")
    reload_all(net, tuple(net.statics), skip=("echo",))  # ...the others reload it
    net.run_until(
        lambda: all(h.node.links["echo"].alive(net.now, 5.5) for n, h in net.hosts.items() if n != "echo"),
        timeout=5,
    )
    net.run_until(net.all_reachable, timeout=10)
    run_checked(net, 15)
    after = wg_peers(net)
    for name, peers in before.items():
        assert {k: after[name].get(k) for k in peers} == peers, name  # same peers, not made again
    beta = net.hosts["beta"].node
    assert beta.hub is not None and beta.hub.statics[ECHO.wg_ip] == "echo"


def test_a_static_node_removed_by_a_reload_is_dropped_and_the_rest_stay_up() -> None:
    net = simnet.seed_basic(SimNet())
    net.statics.append(ECHO)
    for host in net.hosts.values():
        host.node.set_statics(tuple(net.statics), net.now)  # everyone starts knowing echo
    net.add_host("echo", "198.51.100.5", "10.1.1.5")
    settled(net)
    echo = net.hosts["echo"].key
    assert all(echo in h.wg and "echo" in h.node.links for n, h in net.hosts.items() if n != "echo")
    net.leave("echo")
    remaining = tuple(s for s in net.statics if s.name != "echo")
    reload_all(net, remaining, skip=("echo",))
    del net.hosts["echo"]
    run_checked(net, 15)
    for name, host in net.hosts.items():
        assert "echo" not in host.node.links, name
        assert echo not in host.wg, name  # its WireGuard peer is gone too
        assert str(ECHO.wg_ip) not in {p["wgIp"] for p in host.node.status(net.now)["peers"]}, name


def test_a_static_node_that_moves_is_found_at_its_new_address() -> None:
    net = simnet.seed_basic(SimNet())
    net.statics.append(ECHO)
    for host in net.hosts.values():
        host.node.set_statics(tuple(net.statics), net.now)
    net.add_host("echo", "198.51.100.5", "10.1.1.5")
    settled(net)
    moved = replace(ECHO, address="198.51.100.6")
    net.move("echo", "198.51.100.6", None)
    statics = tuple(moved if s.name == "echo" else s for s in net.statics)
    for host in net.hosts.values():
        host.node.set_statics(statics, net.now)  # echo too: its own endpoint, published
    others = [h.node for n, h in net.hosts.items() if n != "echo"]
    net.run_until(lambda: all(node.links["echo"].address == "198.51.100.6" for node in others), timeout=1)
    net.run_until(net.all_reachable, timeout=10)
    run_checked(net, 10)
    assert all(node.status(net.now)["staticNodes"]["echo"]["up"] for node in others)


def test_an_unchanged_list_changes_nothing() -> None:
    net = settled(simnet.seed_basic(SimNet()))
    node = net.hosts["alpha"].node
    link = node.links["beta"]
    assert node.set_statics(tuple(net.statics), net.now) is False
    assert node.links["beta"] is link


@pytest.mark.parametrize("who", ["alpha", "beta"])
def test_whether_a_node_is_static_cannot_change_while_it_runs(who: str) -> None:
    net = settled(simnet.seed_basic(SimNet()))
    node = net.hosts[who].node
    alpha = StaticNode("alpha", IPv4Address("10.1.1.1"), "198.51.100.1", WG_PORT, ADMIN_PORT)
    statics = (alpha,) if who == "beta" else (*net.statics, alpha)  # beta no longer, alpha now
    with pytest.raises(ValueError, match="static node"):
        node.set_statics(statics, net.now)
    assert node.p.statics == tuple(net.statics)  # nothing taken
