"""`python -m lab up TOPOLOGY [--containers] | down | exec HOST CMD... | status` (all take -p PREFIX)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from . import dns
from .control import Lab
from .topology import TopologyError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="lab", description="Test hosts made of network namespaces.")
    ap.add_argument("-p", "--prefix", default="wgnm", help="name prefix of the lab (default wgnm)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build a topology (name in lab/topologies, scale-N, or a file)")
    up.add_argument("topology")
    up.add_argument("--containers", action="store_true", help="a podman container per mesh host")
    sub.add_parser("down", help="remove everything the lab made")
    ex = sub.add_parser("exec", help="run a command on a host")
    ex.add_argument("host")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("status", help="list the hosts of the running lab")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            lab = Lab.up(args.topology, prefix=args.prefix, containers=args.containers)
            print(f"lab {args.prefix}: {lab.topology.name} up in {lab.timings['up_s']:.2f} s")
            if lab.containers:
                print(f"inventory: {lab.inventory}")
        elif args.cmd == "down":
            Lab.teardown(args.prefix)
        elif args.cmd == "exec":
            return (
                Lab.attach(args.prefix)
                .host(args.host)
                .run(
                    args.command or ["sh"],
                    check=False,
                    timeout=None,
                    capture_output=False,
                )
                .returncode
            )
        else:
            status(Lab.attach(args.prefix))
    except (TopologyError, RuntimeError, KeyError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


def status(lab: Lab) -> None:
    topo = lab.topology
    print(f"lab {lab.prefix}: {topo.name}{' (containers)' if lab.containers else ''}")
    print(f"{'HOST':<12} {'KIND':<17} {'NETNS':<20} ADDRESSES")
    for name, node in topo.nodes.items():
        kind = f"router/{node.nat}" if node.router else ("host/firewall" if node.firewall else "host")
        addrs = "  ".join(f"{i}={lk.address}({lk.segment})" for i, lk in node.links.items())
        if not node.router:
            addrs = f"eth0={lab.addresses[name]}({node.main.segment})"
        print(f"{name:<12} {kind:<17} {lab.host(name).netns:<20} {addrs}")
    if dns.NAME in lab.addresses:  # Lab.start_dns
        srv = dns.server(lab)
        print(f"{'(dns)':<12} {'dnsmasq':<17} {srv.netns:<20} eth0={srv.address}")
