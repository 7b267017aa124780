"""Build and remove a topology's network: one namespace per node, plus one "switch" namespace
that holds a bridge per segment, so the root namespace gets no interfaces at all.

Names: node namespaces `<prefix>-<node>`, the switch `<prefix>--sw`; inside the switch, bridges
`br<i>` and veth ends `p<n>`; inside nodes, `eth0` (hosts) or `wan`/`lan` (routers).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable

from .topology import Node, Topology

log = logging.getLogger(__name__)


def node_ns(prefix: str, node: str) -> str:
    return f"{prefix}-{node}"


def switch_ns(prefix: str) -> str:
    return f"{prefix}--sw"


def ports(topo: Topology) -> dict[tuple[str, str], str]:
    """(node, interface) -> name of the switch-side veth end; deterministic from the topology."""
    out: dict[tuple[str, str], str] = {}
    for node in topo.nodes.values():
        for ifname in node.links:
            out[(node.name, ifname)] = f"p{len(out)}"
    return out


def ip_batch(ns: str | None, commands: Iterable[str]) -> None:
    """Run `ip` commands in one process (fast for 100 hosts); raise with ip's message on error."""
    argv = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    res = subprocess.run(
        argv,
        input="\n".join(commands) + "\n",
        text=True,
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"ip -batch in {ns or 'root'} failed: {res.stderr.strip()}")


def in_ns(ns: str, argv: list[str], stdin: str | None = None) -> None:
    res = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        input=stdin,
        text=True,
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {ns} failed: {res.stderr.strip()}")


def _filter_chains(iface: str) -> str:
    """Drop unsolicited packets arriving on `iface`, on both the input and the forward hook:
    with only the forward rule, an early hole-punching probe reaches the router itself,
    conntrack confirms an entry for it and steals the port the LAN host needs (LAB-FACTS.md)."""
    return "\n".join(
        f"""  chain {hook} {{
    type filter hook {hook} priority filter; policy accept;
    iifname "{iface}" ct state established,related accept
    iifname "{iface}" drop
  }}"""
        for hook in ("input", "forward")
    )


def ruleset(node: Node) -> str | None:
    """The node's nftables ruleset (None: no firewall)."""
    if node.router:
        # fully-random: every new conntrack entry (so every new destination of one socket) gets
        # a fresh random port; plain masquerade keeps the source port when it is free (cone).
        flags = " fully-random" if node.nat == "symmetric" else ""
        return f"""table ip lab {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade{flags}
  }}
{_filter_chains("wan")}
}}
"""
    if node.firewall:
        return f"table inet lab {{\n{_filter_chains('eth0')}\n}}\n"
    return None


def default_route(topo: Topology, node: Node, ifname: str) -> str:
    gw = topo.gateway(node.links[ifname].segment)
    return f"route replace default dev {ifname}" + (f" via {gw}" if gw else "")


def build(topo: Topology, prefix: str) -> None:
    sw = switch_ns(prefix)
    names = [sw] + [node_ns(prefix, n) for n in topo.nodes]
    ip_batch(None, (f"netns add {n}" for n in names))
    seg_index = {s: i for i, s in enumerate(topo.segments)}
    cmds = [f"link add br{i} type bridge" for i in seg_index.values()]
    cmds += [f"link set br{i} up" for i in seg_index.values()]
    for (name, ifname), port in ports(topo).items():
        br = seg_index[topo.nodes[name].links[ifname].segment]
        cmds += [
            f"link add {port} type veth peer name {ifname} netns {node_ns(prefix, name)}",
            f"link set {port} master br{br}",
            f"link set {port} up",
        ]
    ip_batch(sw, cmds)
    for node in topo.nodes.values():
        ns = node_ns(prefix, node.name)
        cmds = ["link set lo up"]
        for ifname, lk in node.links.items():
            cmds += [f"addr add {lk.address} dev {ifname}", f"link set {ifname} up"]
        cmds.append(default_route(topo, node, "wan" if node.router else "eth0"))
        ip_batch(ns, cmds)
        if node.router:
            in_ns(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        rules = ruleset(node)
        if rules:
            in_ns(ns, ["nft", "-f", "-"], stdin=rules)


def plug(topo: Topology, prefix: str, node: Node, port: str) -> None:
    """Add a host that is not in the topology (the lab's DNS server) to a running lab: its
    namespace, a veth from its eth0 to its segment's bridge (switch end `port`), address and
    default route, the way `build` makes a host."""
    ns = node_ns(prefix, node.name)
    br = list(topo.segments).index(node.main.segment)
    ip_batch(None, [f"netns add {ns}"])
    ip_batch(
        switch_ns(prefix),
        [
            f"link add {port} type veth peer name eth0 netns {ns}",
            f"link set {port} master br{br}",
            f"link set {port} up",
        ],
    )
    ip_batch(
        ns,
        [
            "link set lo up",
            f"addr add {node.main.address} dev eth0",
            "link set eth0 up",
            default_route(topo, node, "eth0"),
        ],
    )


def lab_namespaces(prefix: str) -> list[str]:
    res = subprocess.run(["ip", "netns", "list"], text=True, capture_output=True, check=True)
    names = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{prefix}-")]


def ns_pids(ns: str) -> list[int]:
    res = subprocess.run(["ip", "netns", "pids", ns], text=True, capture_output=True, check=False)
    return [int(p) for p in res.stdout.split()]


def kill_all(namespaces: list[str], timeout: float = 5.0) -> None:
    """SIGKILL every process in the namespaces and wait (with a deadline) until they are gone."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for ns in namespaces for p in ns_pids(ns)]
        if not pids:
            return
        if time.monotonic() > deadline:
            log.warning("processes still alive in lab namespaces: %s", pids)
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def remove(prefix: str) -> None:
    """Delete every namespace of the lab `prefix` (after its processes are dead): the veths and
    bridges inside them go with them."""
    namespaces = lab_namespaces(prefix)
    kill_all(namespaces)
    if namespaces:
        subprocess.run(
            ["ip", "-force", "-batch", "-"],
            input="".join(f"netns del {n}\n" for n in namespaces),
            text=True,
            capture_output=True,
            check=False,
        )
