"""Idle traffic of a data-limited mobile node (`--mode mobile`) beside a normal node and a
Nebula node, and the time from a mobile node's first packet to a peer until the path is
direct. Real agents and wireguard-go on the lab's seed-basic: delta is mobile, on the home
LAN it shares with charlie (normal); alpha is the public VPS behind its own firewall.

    .venv/bin/python bench/idle.py [--window 600] [--tries 5] [--no-nebula]

Root only (lab namespaces). Idle traffic: the UDP datagrams and bytes (IP headers included)
each way on the node's underlay, counted by an nftables counter over `--window` seconds of a
settled mesh with no traffic in the tunnels, scaled to one hour: all of the node's UDP,
WireGuard's keepalives and handshakes included; ARP is not counted. First packet to direct: from a quiet
pair (both sides through beta), `ping -i 0.2` from delta starts; the clock stops when both
statuses show the direct path (`lan` to charlie, `nat` to alpha) and a reply comes back at
TTL 64. Then the ping stops, and the time until both sides are back through beta is the
"back to idle" figure (the kernel's set forgets the peer 30 s after the last packet).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "lab"), str(ROOT / "bench")]

import probe  # noqa: E402
from meshlab import Mesh  # noqa: E402
from nebula import NebulaMesh  # noqa: E402

from lab import Lab  # noqa: E402

MOBILE, NORMAL = "delta", "charlie"
PEERS = {"charlie": "lan", "alpha": "nat"}  # where delta's traffic goes, and the path it gets


class MobileMesh(Mesh):
    def command(self, host: str, wg_ip: str) -> list[str]:
        return super().command(host, wg_ip) + (["--mode", "mobile"] if host == MOBILE else [])


METER = (  # UDP on the underlay only: not ARP, not what rides inside the tunnel
    "table ip wgnm_meter {\n"
    "  chain o { type filter hook output priority 0; policy accept;"
    ' oifname "eth0" meta l4proto udp counter; }\n'
    "  chain i { type filter hook input priority 0; policy accept;"
    ' iifname "eth0" meta l4proto udp counter; }\n'
    "}\n"
)


def udp(lab: Lab, host: str) -> list[int]:
    """[datagrams sent, bytes, received, bytes] on the host's underlay since the meter went on
    (IP and UDP headers included in the bytes)."""
    out = lab.host(host).run(["nft", "list", "table", "ip", "wgnm_meter"]).stdout
    return [int(w) for line in out.splitlines() if "counter" in line for w in line.split()[-3::2]]


def per_hour(lab: Lab, hosts: list[str], window: float) -> dict[str, list[float]]:
    for h in hosts:
        lab.host(h).run(["nft", "-f", "-"], input=METER)
    t0 = time.monotonic()
    time.sleep(window)  # the measuring window
    dt = time.monotonic() - t0
    return {h: [v * 3600 / dt for v in udp(lab, h)] for h in hosts}


def path_of(lab: Lab, host: str, peer: str) -> Optional[str]:
    st = probe.status(lab, host) or {}
    return next((p["path"] for p in st.get("peers", []) if p["name"] == peer), None)


def wait(cond: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - start


def first_packet(lab: Lab, mesh: Mesh, peer: str, kind: str) -> tuple[float, float]:
    """(seconds from the first packet to a direct path both ways at TTL 64, seconds from the
    last packet back to the gateway both ways)."""
    both = lambda k: path_of(lab, MOBILE, peer) == k and path_of(lab, peer, MOBILE) == k  # noqa: E731
    wait(lambda: both("gateway"), 90, f"{MOBILE}-{peer} quiet")
    ip = mesh.wg_ip(peer)
    pinger = lab.host(MOBILE).popen(
        ["ping", "-n", "-i", "0.2", ip], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        start = time.monotonic()
        wait(lambda: both(kind) and probe.ping(lab, MOBILE, ip) == 64, 30, f"{MOBILE}-{peer} {kind}")
        direct = time.monotonic() - start
    finally:
        pinger.terminate()
        pinger.wait(5)
    back = wait(lambda: both("gateway"), 90, f"{MOBILE}-{peer} back through beta")
    return direct, back


def run_agents(window: float, tries: int) -> dict[str, Any]:
    with Lab.up("seed-basic", prefix="bnm" + os.urandom(3).hex()) as lab:
        mesh = MobileMesh(lab)
        try:
            mesh.start_all()
            wait(lambda: all(probe.status(lab, h) for h in mesh.hosts), 60, "agents up")
            wait(lambda: (probe.status(lab, MOBILE) or {}).get("converged"), 60, "delta converged")
            home = lambda: (probe.status(lab, MOBILE) or {}).get("staticNodes", {}).get("beta", {})  # noqa: E731
            wait(lambda: home().get("tunneled"), 60, "delta's HELLOs through the tunnel")
            idle = per_hour(lab, [MOBILE, NORMAL], window)
            times: dict[str, list[tuple[float, float]]] = {p: [] for p in PEERS}
            for _ in range(tries):
                for peer, kind in PEERS.items():
                    times[peer].append(first_packet(lab, mesh, peer, kind))
            return {"idle": idle, "times": times}
        finally:
            mesh.close()


def run_nebula(window: float) -> dict[str, list[float]]:
    with Lab.up("seed-basic", prefix="bnn" + os.urandom(3).hex()) as lab, NebulaMesh(lab, "beta") as neb:
        neb.start_all(ROOT / ".lab" / f"logs-{lab.prefix}")
        ips = neb.ips
        wait(lambda: probe.ping(lab, NORMAL, ips["delta"], 0.5) is not None, 60, "nebula up")
        time.sleep(5)  # let the first handshakes settle before the window
        return per_hour(lab, [NORMAL], window)


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.1f} s ({min(xs):.1f}-{max(xs):.1f})"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=600.0, help="idle seconds measured (default 600)")
    ap.add_argument("--tries", type=int, default=5, help="first-packet measurements per peer")
    ap.add_argument("--no-nebula", action="store_true")
    args = ap.parse_args(argv)
    print(f"$ python bench/idle.py {' '.join(argv)}  ({datetime.datetime.now():%Y-%m-%d %H:%M})", flush=True)
    ours = run_agents(args.window, args.tries)
    neb = None if args.no_nebula else run_nebula(args.window)
    rows = [
        ("mobile node (delta, --mode mobile)", ours["idle"][MOBILE]),
        ("normal node (charlie)", ours["idle"][NORMAL]),
    ]
    if neb is not None:
        rows.append(("Nebula node (charlie)", neb[NORMAL]))
    mobile = ours["idle"][MOBILE]
    print(f"\nidle UDP per hour on the underlay (window {args.window:.0f} s, scaled)")
    print("| node | datagrams sent | bytes sent | datagrams received | bytes received | sent vs mobile |")
    print("|---|---|---|---|---|---|")
    for name, v in rows:
        ratio = f"{v[0] / mobile[0]:.1f}x" if mobile[0] else "-"
        print(f"| {name} | {v[0]:.0f} | {v[1]:.0f} | {v[2]:.0f} | {v[3]:.0f} | {ratio} |")
    per_25s = mobile[0] * 25 / 3600
    print(
        f"mobile node: {per_25s:.2f} datagrams sent per 25 s, {mobile[1] / max(mobile[0], 1):.0f} bytes each"
    )
    print(f"\nfirst packet to a direct path, {args.tries} tries each: median (min-max)")
    print("| peer | path | first packet -> direct both ways, TTL 64 | last packet -> back through beta |")
    print("|---|---|---|---|")
    for peer, kind in PEERS.items():
        t = ours["times"][peer]
        print(f"| {peer} | {kind} | {fmt([d for d, _ in t])} | {fmt([b for _, b in t])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
