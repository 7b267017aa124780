"""Network faults for a running lab: a partitioned segment, packet loss on the internet side,
a router whose NAT table is lost (a reboot).

This kernel has no netem (LAB-FACTS.md): loss is an nftables `numgen random` drop, made in
the namespace of every node that is plugged into an internet segment, on its ingress there
(prerouting, before conntrack and NAT), so a packet that crosses the internet once meets it
once and a round trip twice. Every function undoes itself when called with the neutral value
(`set_loss(lab, 0)`, `partition(lab, seg, False)`); a lab's teardown removes everything anyway.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from . import net

if TYPE_CHECKING:
    from .control import Lab

LOSS_TABLE = "labloss"  # an nftables table of its own, so removing it touches nothing else


def bridge(lab: Lab, segment: str) -> str:
    """The name of the segment's bridge in the switch namespace."""
    return f"br{list(lab.topology.segments).index(segment)}"


def partition(lab: Lab, segment: str = "internet", cut: bool = True) -> None:
    """Cut (`cut=False`: heal) a segment: its bridge goes down, which disables its ports, so
    nothing crosses it while every node keeps its links, addresses and conntrack state."""
    net.ip_batch(net.switch_ns(lab.prefix), [f"link set {bridge(lab, segment)} {'down' if cut else 'up'}"])


def internet_links(lab: Lab) -> dict[str, list[str]]:
    """node -> its interfaces on an internet segment (a host's eth0, a router's wan)."""
    out: dict[str, list[str]] = {}
    for node in lab.topology.nodes.values():
        ifnames = [i for i, lk in node.links.items() if lab.topology.segments[lk.segment]]
        if ifnames:
            out[node.name] = ifnames
    return out


def set_loss(lab: Lab, percent: int) -> None:
    """Drop `percent` % of the packets arriving from the internet, at random, on every node
    plugged into it; 0 removes the rules."""
    if not 0 <= percent <= 100:
        raise ValueError(f"loss {percent}: a percentage")
    for name, ifnames in internet_links(lab).items():
        ns = net.node_ns(lab.prefix, name)
        rules = f"table ip {LOSS_TABLE}\ndelete table ip {LOSS_TABLE}\n"  # idempotent replace
        if percent:
            drops = "\n".join(f'    iifname "{i}" numgen random mod 100 < {percent} drop' for i in ifnames)
            rules += (
                f"table ip {LOSS_TABLE} {{\n  chain prerouting {{\n"
                f"    type filter hook prerouting priority raw; policy accept;\n{drops}\n  }}\n}}\n"
            )
        net.in_ns(ns, ["nft", "-f", "-"], stdin=rules)


# pyroute2 (the agent's own dependency, so in every environment that runs the agent) speaks
# ctnetlink: no conntrack-tools package needed.
_FLUSH = "from pyroute2 import Conntrack\nwith Conntrack() as ct:\n    ct.flush()\n"


def flush_conntrack(lab: Lab, router: str) -> None:
    """Forget every connection the router tracks, as a reboot does: each flow gets a new NAT
    mapping (a `symmetric` router: a new random port) with its next outbound packet, and
    inbound packets of the old flows are unsolicited, so dropped, until then."""
    net.in_ns(net.node_ns(lab.prefix, router), [sys.executable, "-c", _FLUSH])


def conntrack_count(lab: Lab, router: str) -> int:
    """How many connections the router tracks now."""
    script = "from pyroute2 import Conntrack\nwith Conntrack() as ct:\n    print(len(list(ct.dump())))\n"
    res = lab.host(router).run([sys.executable, "-c", script], timeout=30)
    return int(res.stdout)
