"""Simulated meshes driven through the real sans-IO core (no root, no sockets, no clock)."""

from __future__ import annotations

import pytest
import simnet
from simnet import SimNet, scale


def seed_basic(symmetric: bool = False) -> SimNet:
    return simnet.seed_basic(SimNet(), symmetric)


def test_seed_basic_converges_with_direct_paths() -> None:
    net = seed_basic()
    t = net.run_until(net.all_reachable, timeout=10)
    assert t < 3, t
    net.run_until(
        lambda: (
            net.path("charlie", "delta") == "lan"
            and net.path("alpha", "charlie") == "nat"
            and net.path("alpha", "delta") == "nat"
        ),
        timeout=10,
    )
    assert net.path("delta", "charlie") == "lan"
    assert net.path("charlie", "alpha") == "nat"
    assert net.path("alpha", "beta") == "static" and net.path("beta", "alpha") == "static"
    assert net.all_reachable()
    for h in net.hosts.values():
        st = h.node.status(net.now)
        assert st["converged"], st
        assert sum(st["drops"].values()) == 0, st["drops"]


def test_static_nodes_listed_without_names() -> None:
    """The original's net.yaml lists static nodes by endPoint and wgIp only: each is known by
    its wgIp and answers under the name it runs with, which everyone then shows."""
    net = SimNet()
    net.add_static("static-10-1-1-2", "198.51.100.2", "10.1.1.2", named=False)
    net.add_static("static-10-1-1-5", "198.51.100.5", "10.1.1.5", named=False)
    net.add_host("alpha", "198.51.100.1", "10.1.1.1", firewall=True)
    net.add_host("beta", "198.51.100.2", "10.1.1.2")
    net.add_host("echo", "198.51.100.5", "10.1.1.5")
    home = net.add_nat("203.0.113.10")
    net.add_host("charlie", "192.168.1.3", "10.1.1.3", nat=home)
    net.add_host("delta", "192.168.1.4", "10.1.1.4", nat=home)
    net.run_until(net.all_reachable, timeout=10)
    net.run_until(lambda: net.path("alpha", "charlie") == "nat" and net.path("charlie", "delta") == "lan", 10)
    assert net.path("beta", "echo") == "static" and net.path("charlie", "beta") == "static"
    for h in net.hosts.values():
        st = h.node.status(net.now)
        assert st["static"] == (h.name in ("beta", "echo"))
        assert {p["name"] for p in st["peers"]} == set(net.hosts) - {h.name}, st["peers"]


def test_symmetric_nat_falls_back_to_gateway() -> None:
    net = seed_basic(symmetric=True)
    net.run_until(net.all_reachable, timeout=10)
    net.run_until(lambda: net.path("alpha", "charlie") == "gateway", timeout=20)
    for _ in range(300):  # 30 s more: stays reachable while punching keeps failing
        net.step()
        assert net.all_reachable(), net.unreachable_pairs()
    assert net.path("alpha", "charlie") == "gateway"
    assert net.path("charlie", "delta") == "lan"


def test_lost_gateway_is_routed_around() -> None:
    """hard-nat with two static nodes: when the one relaying alpha<->charlie dies, everyone
    drops it (and what it served) and relays through the other within the hub timeout."""
    net = SimNet()
    net.add_static("beta", "198.51.100.2", "10.1.1.2")
    net.add_static("echo", "198.51.100.5", "10.1.1.5")
    net.add_host("alpha", "192.168.9.10", "10.1.1.1", nat=net.add_nat("203.0.113.1", symmetric=True))
    net.add_host("beta", "198.51.100.2", "10.1.1.2")
    net.add_host("echo", "198.51.100.5", "10.1.1.5")
    home = net.add_nat("203.0.113.10", symmetric=True)
    net.add_host("charlie", "192.168.1.3", "10.1.1.3", nat=home)
    net.add_host("delta", "192.168.1.4", "10.1.1.4", nat=home)
    net.run_until(lambda: net.all_reachable() and net.path("alpha", "charlie") == "gateway", timeout=20)
    peers = {p["name"]: p for p in net.hosts["alpha"].node.status(net.now)["peers"]}
    gw = peers["charlie"]["gateway"]
    other = "echo" if gw == "beta" else "beta"
    net.hosts[gw].alive = False
    hosts = ("alpha", "charlie", "delta", other)  # still listed by the other: not reached
    net.run_until(lambda: net.all_reachable() and all(net.path(h, gw) == "none" for h in hosts), timeout=8)
    peers = {p["name"]: p for p in net.hosts["alpha"].node.status(net.now)["peers"]}
    assert (peers["charlie"]["path"], peers["charlie"]["gateway"]) == ("gateway", other)


def test_a_silent_static_node_is_routed_around_but_its_table_is_held() -> None:
    """beta, the only static node, goes silent: nothing goes through it (path none), but
    the direct paths it brought about stay (charlie and delta on their LAN, alpha and
    charlie through NAT), on the table it last served; when it answers again, all is back."""
    net = seed_basic()
    net.run_until(lambda: net.all_reachable() and net.path("alpha", "charlie") == "nat", timeout=20)
    net.hosts["beta"].alive = False
    net.run_until(lambda: net.path("charlie", "beta") == "none", timeout=8)
    for _ in range(300):  # 30 s
        net.step()
        assert net.reachable("charlie", "delta") and net.reachable("delta", "charlie")
        assert net.reachable("alpha", "charlie") and net.reachable("charlie", "alpha")
    assert net.path("charlie", "delta") == "lan"
    assert any(info.name == "beta" for info in net.hosts["charlie"].node.view.values())
    net.hosts["beta"].alive = True
    net.run_until(net.all_reachable, timeout=15)


def test_dead_node_is_dropped_and_comes_back() -> None:
    net = seed_basic()
    net.run_until(lambda: net.path("alpha", "charlie") == "nat", timeout=10)
    net.hosts["charlie"].alive = False
    net.run_until(
        lambda: all(p["name"] != "charlie" for p in net.hosts["alpha"].node.status(net.now)["peers"]),
        timeout=13,  # member_timeout (10 s) + a push
    )
    net.hosts["charlie"].alive = True
    # beta forgot charlie and its WireGuard peer: charlie makes its own afresh (HubLink.forgotten),
    # instead of keeping a session beta no longer has until WireGuard gives up on it.
    net.run_until(net.all_reachable, timeout=3)


@pytest.mark.parametrize("symmetric", [False, True])
def test_cached_desired_state_is_never_stale(symmetric: bool) -> None:
    """Node.desired() recomputes only when an input changed: through convergence, path
    changes, a node dying and coming back, it must equal a fresh computation at every step."""
    net = seed_basic(symmetric)
    net.verify_desired = True
    net.run_until(net.all_reachable, timeout=10)
    for _ in range(150):
        net.step()
    net.hosts["charlie"].alive = False
    for _ in range(80):
        net.step()
    net.hosts["charlie"].alive = True
    net.run_until(net.all_reachable, timeout=10)
    for _ in range(150):
        net.step()


def test_members_end_up_with_every_static_nodes_published_table() -> None:
    """Tables travel as deltas over the version a member holds: after joins, deaths and
    returns, every member's copy equals what each static node it talks to publishes."""
    net = simnet.scale(SimNet(seed=3), 60)
    net.run_until(net.all_reachable, timeout=30, dt=0.25)
    for name in ("n3", "n17", "n40"):
        net.hosts[name].alive = False
    for _ in range(30):
        net.step(0.25)
    net.hosts["n17"].alive = True
    net.run_until(net.all_reachable, timeout=30, dt=0.25)
    for _ in range(8):
        net.step(0.25)
    for host in net.hosts.values():
        if not host.alive:
            continue
        for name, link in host.node.links.items():
            if link.asked_since is None:
                continue  # not one of the static nodes it talks to (its homes)
            hub = net.hosts[name].node.hub
            assert hub is not None and link.version == hub.version, (host.name, name)
            assert link.table == {e.public_key: e for c in hub.chunks() for e in c.entries}


@pytest.mark.timeout(1800)  # minutes of CPU on a 2-core runner; bench/sim_scale.py reports figures
@pytest.mark.parametrize("n", [200])
def test_large_mesh_converges(n: int) -> None:
    net = simnet.scale(SimNet(seed=7), n)
    net.run_until(net.all_reachable, timeout=60, dt=0.25)
    assert all(h.node.status(net.now)["converged"] for h in net.hosts.values())


@pytest.mark.parametrize("symmetric", [False, True], ids=["seed-basic", "hard-nat"])
def test_ticking_only_at_deadlines_changes_nothing(symmetric: bool) -> None:
    """The daemon ticks a node only when next_deadline() says so. A simulated mesh run that
    way goes through exactly the same paths at exactly the same times as one ticked every
    0.1 s (the same seed: skipped ticks would have done nothing), with far fewer ticks:
    forming, punching or giving up, a node dying and coming back, a static node going
    silent."""
    eager, lazy = seed_basic(symmetric), seed_basic(symmetric)
    lazy.lazy = True
    history: dict[bool, list[object]] = {False: [], True: []}
    for i in range(360):
        for net in (eager, lazy):
            if i == 150:
                net.hosts["charlie"].alive = False
            if i == 220:
                net.hosts["charlie"].alive = True
            if i == 300:
                net.hosts["beta"].alive = False  # a static link goes silent
            net.step()
            history[net.lazy].append(
                sorted(
                    (h, p["name"], p["path"])
                    for h, x in net.hosts.items()
                    for p in x.node.status(net.now)["peers"]
                )
            )
    for step, (e, la) in enumerate(zip(history[False], history[True])):
        assert e == la, f"step {step}: {set(e) ^ set(la)}"
    assert lazy.ticks < eager.ticks / 2, (lazy.ticks, eager.ticks)
    assert history[True][-1] != history[True][299]  # beta's silence was noticed


def test_a_settled_node_drives_only_the_paths_that_need_it() -> None:
    """A tick looks at a direct path only when its counters, its peer or our addresses
    changed, a PROBE was answered or its own deadline came: in a settled mesh of 40 a
    second of ticks costs a few looks per peer, not one per peer per tick."""
    net = scale(SimNet(seed=3), 40, 2)
    net.run_until(net.all_reachable, timeout=60, dt=0.25)
    for _ in range(150):
        net.step(0.1)  # probing settles
    members = [h for h in net.hosts.values() if not h.node.p.is_static]
    before = {h.name: h.node.directs.driven for h in members}
    ticks = 10
    for _ in range(ticks):
        net.step(0.1)
    for h in members:
        peers = len(h.node.paths)
        assert peers >= 30, (h.name, peers)
        assert h.node.directs.driven - before[h.name] < ticks * peers / 4, h.name


def test_a_restarted_static_node_leaves_the_direct_paths_alone() -> None:
    """beta, the only static node, restarts (a new run, a new interface): its new table lists
    only the members that said HELLO again, and none of their endpoints at first. What its
    previous run served is held a while behind it, and a mapping not seen yet is not a new
    one: the direct paths (a LAN pair, NAT pairs) keep every packet, and only beta's own pairs
    wait for the members to find its new run."""
    net = seed_basic()
    net.run_until(lambda: net.all_reachable() and net.path("alpha", "charlie") == "nat", timeout=20)
    for _ in range(100):
        net.step()
    net.restart("beta")
    direct = [("charlie", "delta"), ("alpha", "charlie"), ("alpha", "delta")]
    for _ in range(300):  # 30 s
        net.step()
        for a, b in direct:
            assert net.reachable(a, b) and net.reachable(b, a), (a, b, round(net.now, 1))
    assert net.all_reachable()


@pytest.mark.parametrize("blocked", [("charlie", "delta"), ("alpha", "charlie")])
def test_a_direct_path_that_works_one_way_only_is_never_used(blocked: tuple[str, str]) -> None:
    """WireGuard datagrams get from one node of a pair to the other but not back (charlie and
    delta on their LAN; alpha, a firewalled VPS, and charlie behind NAT). Each side hears the
    other's handshake initiations, but no handshake completes: neither may call the direct path
    up (issue 15's soak lost such a pair for 35 s), and they reach each other through beta."""
    net = seed_basic()
    net.one_way.add(blocked)
    net.run_until(net.all_reachable, timeout=10)
    a, b = blocked
    for _ in range(600):  # a minute: probing, giving up, retrying
        net.step()
        assert net.all_reachable(), net.unreachable_pairs()
        assert {net.path(a, b), net.path(b, a)} == {"gateway"}, (net.path(a, b), net.path(b, a))
