"""A static node that restarts (hard-nat-2gw: two static nodes, beta and echo; alpha, charlie
and delta behind symmetric NATs, so their pairs go through a gateway).

Its members' WireGuard still holds a session with its old run, which the new run drops unread
(simnet: as WireGuard drops data under a session it does not hold), and would start a new
handshake only after 15 s without an answer. Once the new run has answered and had a moment to
add them, members make their peer for it again, so the handshake goes at once; one that went
silent (a crash says nothing) is asked for its run at once, not at the next idle heartbeat. A
static node that is stopped (SIGTERM: LEAVE) also says so to its members, who route through
echo at once instead of after the hub timeout, and ask for its next run at every heartbeat."""

from __future__ import annotations

from simnet import SimNet

MEMBERS = ["alpha", "charlie", "delta"]


def hard_nat_2gw() -> SimNet:
    net = SimNet(seed=5)
    net.add_static("beta", "198.51.100.2", "10.1.1.2")
    net.add_static("echo", "198.51.100.5", "10.1.1.5")
    net.add_host("alpha", "172.16.1.10", "10.1.1.1", nat=net.add_nat("203.0.113.2", symmetric=True))
    net.add_host("beta", "198.51.100.2", "10.1.1.2")
    home = net.add_nat("203.0.113.1", symmetric=True)
    net.add_host("charlie", "192.168.1.3", "10.1.1.3", nat=home)
    net.add_host("delta", "192.168.1.4", "10.1.1.4", nat=home)
    net.add_host("echo", "198.51.100.5", "10.1.1.5")
    net.run_until(net.all_reachable, timeout=20)
    for _ in range(150):  # 15 s: every HELLO in step, every path settled
        net.step()
    assert net.all_reachable()
    return net


def pairs(names: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in names for b in names if a != b]


def outage(net: SimNet, watched: list[tuple[str, str]], seconds: float) -> dict[tuple[str, str], float]:
    """Run `seconds`; per pair, the longest time it was not reachable."""
    longest = dict.fromkeys(watched, 0.0)
    since: dict[tuple[str, str], float] = {}
    end = net.now + seconds
    while net.now < end:
        net.step()
        for pair in watched:
            if net.reachable(*pair):
                since.pop(pair, None)
            else:
                start = since.setdefault(pair, net.now)
                longest[pair] = max(longest[pair], net.now - start)
    return longest


def test_members_find_a_crashed_static_nodes_new_run_without_waiting_for_wireguard() -> None:
    net = hard_nat_2gw()
    net.restart("beta")  # a crash and a new run: no LEAVE
    with_beta = [(m, "beta") for m in MEMBERS] + [("beta", m) for m in MEMBERS]
    longest = outage(net, with_beta, 30)
    # Seen silent after the hub timeout (5.5 s, counted from the last thing heard), then at
    # once (not at the next idle heartbeat, up to 10 s on) a KEYREQ round, the HELLO, the
    # settle time and a handshake: well before WireGuard would give up on the old session.
    assert max(longest.values()) < 7, longest
    assert net.all_reachable()


def test_a_stopped_static_node_costs_the_gateway_pairs_nothing_and_is_back_at_once() -> None:
    net = hard_nat_2gw()
    for name in MEMBERS:
        assert "beta" in {n for n in net.hosts[name].node.links if net.hosts[name].node.links[n].info}
    net.leave("beta")  # SIGTERM: LEAVE to echo and to its members
    others = pairs(MEMBERS + ["echo"])
    down = outage(net, others, 2)  # beta is down for 2 s
    net.restart("beta")
    with_beta = [(m, "beta") for m in MEMBERS] + [("beta", m) for m in MEMBERS]
    back = outage(net, others + with_beta, 20)
    # The gateway pairs moved to echo as beta said LEAVE: at most the first tick and a push.
    assert max(down.values()) <= 0.5 and max(back[p] for p in others) <= 0.5, (down, back)
    # beta's own pairs: a heartbeat (1 s) after it is up, a KEYREQ round, the HELLO, the
    # settle time (0.3 s) and a handshake.
    assert max(back[p] for p in with_beta) < 3, back
    assert net.all_reachable()
