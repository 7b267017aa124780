"""A long simulated run with churn (issue 15's soak): the real core of every node, nodes joining,
leaving, crashing, roaming and static nodes going down and coming back every few minutes, checked after every
event and all the time in between.

After each event the run steps finely until every pair of live nodes is reachable again and
records how long that took (the bound the README reports is the worst of these). In between,
every pair must stay reachable (checked every 10 simulated seconds), no address may be in two
WireGuard peers of a node (checked every step), and the sizes of what the nodes hold (view,
paths, counters, peers, the cipher layer's per-peer state, a static node's members, deltas)
must stay within what the mesh's size explains (recorded per simulated hour).

`tests/sim/test_soak.py` runs two simulated hours in CI; `bench/soak.py` runs days.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from simnet import Host, SimNet

import wg_netmanager

STATICS = ("s0", "s1")
QUIET = (60.0, 300.0)  # seconds between two events
BOUND = 90.0  # seconds an event may take to heal before it counts as a failure
SLOW = 10.0  # an event that takes longer is listed with the pairs still apart halfway
COARSE, FINE = 1.0, 0.1  # simulated seconds per step between events, and while one heals


@dataclass
class Report:
    hours: float
    events: Counter[str] = field(default_factory=Counter)
    recovery: dict[str, list[float]] = field(default_factory=dict)  # per kind of event, seconds
    worst: tuple[float, str] = (0.0, "")  # seconds, and which event
    failures: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)  # events that took more than SLOW to heal
    sizes: list[dict[str, int]] = field(default_factory=list)  # per simulated hour: the largest
    # per simulated hour (track_memory): bytes traced in the agent's code (what the nodes
    # hold), and in everything (the simulator's NATs and queues too)
    memory: list[int] = field(default_factory=list)
    memory_total: list[int] = field(default_factory=list)

    def heal(self, kind: str, seconds: float, what: str) -> None:
        self.events[kind] += 1
        self.recovery.setdefault(kind, []).append(seconds)
        if seconds > self.worst[0]:
            self.worst = (seconds, what)


def mesh(seed: int) -> SimNet:
    """Two static nodes; twelve members behind two home routers (port-restricted cone) and a
    symmetric one, and one public behind a firewall; four of them away at first."""
    net = SimNet(seed=seed)
    net.lazy = True  # ticked at their deadlines only, as the daemon does
    for i, name in enumerate(STATICS):
        net.add_static(name, f"198.51.100.{i + 2}", f"10.1.0.{i + 2}")
    for i, name in enumerate(STATICS):
        net.add_host(name, f"198.51.100.{i + 2}", f"10.1.0.{i + 2}")
    routers = [net.add_nat("203.0.113.10"), net.add_nat("203.0.113.20"), net.add_nat("203.0.113.30", True)]
    for i in range(12):
        nat = routers[i % 3]
        net.add_host(f"m{i}", f"192.168.{i % 3}.{10 + i}", f"10.1.1.{10 + i}", nat=nat)
    net.add_host("pub", "198.51.100.50", "10.1.1.50", firewall=True)
    for name in ("m9", "m10", "m11", "pub"):
        net.hosts[name].alive = False
    return net


def sizes(net: SimNet) -> dict[str, int]:
    """The largest of each thing a live node holds."""
    out: Counter[str] = Counter()
    for h in net.hosts.values():
        if not h.alive:
            continue
        n = h.node
        now = {
            "view": len(n.view),
            "paths": len(n.paths),
            "stats": len(n.stats),
            "wireguard peers": len(h.wg),
            "cipher peers": len(n.codec._peers),
            "tombstones": len(n.codec._tombstones),
            "table entries held": sum(len(lk.table) for lk in n.links.values()),
        }
        if n.hub is not None:
            now |= {
                "members": len(n.hub.members),
                "relayed": len(n.hub.relayed),
                "deltas": len(n.hub.published._deltas),
            }
        for k, v in now.items():
            out[k] = max(out[k], v)
    return dict(out)


def doubled_addresses(host: Host) -> list[str]:
    seen: Counter[object] = Counter(net for peer in host.wg.values() for net in peer.allowed)
    return [str(a) for a, c in seen.items() if c > 1]


def _heal(net: SimNet, report: Report, kind: str, what: str) -> None:
    start = net.now
    stuck: Optional[list[tuple[str, str]]] = None  # the pairs still apart after SLOW / 2
    while not net.all_reachable():
        if net.now - start > BOUND:
            report.failures.append(
                f"{what} at {start:.0f}: {net.unreachable_pairs()[:6]} after {BOUND:.0f} s"
            )
            report.events[kind] += 1
            return
        if stuck is None and net.now - start > SLOW / 2:
            stuck = net.unreachable_pairs()[:6]
        net.step(FINE)
        _check_addresses(net, report)
    report.heal(kind, net.now - start, what)
    if net.now - start > SLOW:
        took = net.now - start
        report.slow.append(f"{what} at {start:.0f}: {took:.1f} s, apart after {SLOW / 2:.0f} s: {stuck}")


def _check_addresses(net: SimNet, report: Report) -> None:
    for h in net.hosts.values():
        if h.alive:
            doubled = doubled_addresses(h)
            if doubled:
                report.failures.append(f"{h.name} at {net.now:.0f}: {doubled} in two peers")


def _event(net: SimNet, rng: random.Random) -> tuple[str, str]:
    """One random change; returns its kind and a description."""
    members = [n for n in net.hosts if n not in STATICS]
    live = [n for n in members if net.hosts[n].alive]
    away = [n for n in members if not net.hosts[n].alive]
    down = [n for n in STATICS if not net.hosts[n].alive]
    kinds = ["roam", "static back" if down else "static down"]
    if away:
        kinds.append("join")
    if len(live) > 4:
        kinds += ["leave", "crash"]
    kind = rng.choice(kinds)
    if kind == "join":
        name = rng.choice(away)
        net.restart(name)
        return kind, f"{name} joins"
    if kind == "leave":
        name = rng.choice(live)
        net.leave(name)
        return kind, f"{name} leaves"
    if kind == "crash":
        name = rng.choice(live)
        net.hosts[name].alive = False
        return kind, f"{name} crashes"
    if kind == "roam":
        name = rng.choice([n for n in live if n != "pub"] or live)
        j = rng.randrange(3)
        nat = list(net.nats.values())[j]
        ip = f"192.168.{j}.{rng.randrange(100, 250)}"
        while ip in net.by_ip:
            ip = f"192.168.{j}.{rng.randrange(100, 250)}"
        net.move(name, ip, nat)
        return kind, f"{name} roams to {ip}"
    if kind == "static down":
        name = rng.choice(STATICS)
        net.hosts[name].alive = False  # agent and WireGuard: a reboot, or the host cut off
        return kind, f"{name} goes down"
    name = down[0]
    net.restart(name)  # a new run of its agent on a new interface
    return kind, f"{name} comes back"


def run(hours: float, seed: int = 1, track_memory: bool = False) -> Report:
    rng = random.Random(seed)
    net = mesh(seed)
    report = Report(hours)
    if track_memory:
        tracemalloc.start()
    net.run_until(net.all_reachable, timeout=60)
    start, next_hour = net.now, net.now + 3600
    hour: Optional[dict[str, int]] = None
    while net.now - start < hours * 3600:
        quiet_until = net.now + rng.uniform(*QUIET)
        last_check = net.now
        while net.now < quiet_until:
            net.step(COARSE)
            _check_addresses(net, report)
            hour = {k: max(v, (hour or {}).get(k, 0)) for k, v in sizes(net).items()}
            if net.now - last_check >= 10:
                last_check = net.now
                if not net.all_reachable():
                    report.failures.append(f"quiet at {net.now:.0f}: {net.unreachable_pairs()[:6]}")
                    _heal(net, report, "quiet outage", "an outage while nothing happened")
            if net.now >= next_hour:
                next_hour += 3600
                report.sizes.append(hour or {})
                hour = None
                if track_memory:
                    report.memory.append(agent_memory())
                    report.memory_total.append(tracemalloc.get_traced_memory()[0])
        kind, what = _event(net, rng)
        _heal(net, report, kind, what)
    if track_memory:
        tracemalloc.stop()
    return report


AGENT_CODE = str(Path(wg_netmanager.__file__).resolve().parent / "*")


def agent_memory() -> int:
    """Bytes traced now that the agent's own code allocated (tracemalloc must be on)."""
    gc.collect()
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, AGENT_CODE)])
    return sum(stat.size for stat in snap.statistics("filename"))


def table(report: Report) -> str:
    lines = [f"{'event':<16}{'count':>6}{'median s':>10}{'worst s':>9}"]
    for kind, times in sorted(report.recovery.items()):
        times = sorted(times)
        lines.append(f"{kind:<16}{len(times):>6}{times[len(times) // 2]:>10.1f}{times[-1]:>9.1f}")
    lines.append(f"worst: {report.worst[0]:.1f} s ({report.worst[1]}); failures: {len(report.failures)}")
    lines += [f"slow: {s}" for s in report.slow[:20]]
    if report.sizes:
        first, last = report.sizes[0], report.sizes[-1]
        lines.append(
            "largest per node, first hour -> last hour: "
            + ", ".join(f"{k} {first.get(k, 0)} -> {last.get(k, 0)}" for k in sorted(first))
        )
    for name, values in (("agent", report.memory), ("all (with the simulator)", report.memory_total)):
        if values:
            mb = " ".join(f"{m / 1e6:.1f}" for m in values)
            lines.append(f"traced memory per hour, {name} (MB): {mb}")
    return "\n".join(lines)
