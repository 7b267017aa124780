"""Convergence, roaming, gateway loss, idle traffic and memory of real agents on the lab, side
by side with Nebula 1.6 on the same topology. Prints one table (medians of --runs runs).

    .venv/bin/python bench/convergence.py [--runs 3] [--scale 20,50] [--json out.json]

Root only (lab namespaces). Every lab gets a fresh `bnc…` prefix and is torn down, also on
failure and Ctrl-C. Times start when the last process of the mesh has been spawned.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "lab"), str(ROOT / "bench")]

import probe  # noqa: E402
from meshlab import Mesh  # noqa: E402
from nebula import NebulaMesh  # noqa: E402
from nebula import version as nebula_version  # noqa: E402

from lab import Lab  # noqa: E402

DIRECT_PATHS = {"lan", "nat", "static"}
Result = dict[str, Optional[float]]


@contextmanager
def lab_up(topology: str) -> Iterator[Lab]:
    prefix = "bnc" + os.urandom(3).hex()
    with Lab.up(topology, prefix=prefix) as lab:
        yield lab


@contextmanager
def agents(lab: Lab, subnet: str = "10.1.1.0/24") -> Iterator[tuple[Mesh, float]]:
    """Start an agent on every mesh host; yields the mesh and the monotonic time at which the
    last agent process had been spawned."""
    mesh = Mesh(lab, subnet=subnet)
    try:
        mesh.start_all()
        yield mesh, time.monotonic()
    finally:
        mesh.close()


def all_pairs(hosts: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a in hosts for b in hosts if a != b]


def reachable(lab: Lab, pairs: list[tuple[str, str]], ips: dict[str, str]) -> bool:
    return all(t is not None for t in probe.ttls(lab, pairs, ips, 0.3).values())


def all_direct_ttl(lab: Lab, pairs: list[tuple[str, str]], ips: dict[str, str]) -> bool:
    return all(t == probe.DIRECT_TTL for t in probe.ttls(lab, pairs, ips, 0.3).values())


def on_direct_paths(lab: Lab, hosts: list[str]) -> bool:
    """Every agent knows every other node, on a lan/nat/static path (so both ways are checked)."""
    for h in hosts:
        st = probe.status(lab, h)
        if not st or len(st["peers"]) != len(hosts) - 1:
            return False
        if any(p["path"] not in DIRECT_PATHS for p in st["peers"]):
            return False
    return True


def converged(lab: Lab, hosts: list[str]) -> bool:
    for h in hosts:
        st = probe.status(lab, h)
        if not st or not st["converged"] or len(st["peers"]) != len(hosts) - 1:
            return False
    return True


def idle_fields(idle: probe.Idle, tag: str) -> Result:
    return {
        f"{tag}.tx_bytes_s": idle.tx_bytes_s,
        f"{tag}.tx_pkts_s": idle.tx_pkts_s,
        f"{tag}.rss_mb": idle.rss_mb,
        f"{tag}.cpu_pct": idle.cpu_pct,
        f"{tag}.wg_rss_mb": idle.wg_rss_mb,
        f"{tag}.wg_cpu_pct": idle.wg_cpu_pct,
    }


def run_seed_agents(window: float) -> Result:
    with lab_up("seed-basic") as lab, agents(lab) as (mesh, t0):
        hosts, ips = mesh.hosts, {h: mesh.wg_ip(h) for h in mesh.hosts}
        pairs = all_pairs(hosts)
        out: Result = {
            "seed.sockets_s": probe.wait_until(lambda: all(probe.status(lab, h) for h in hosts), t0, 30)
        }
        out["seed.reach_s"] = probe.wait_until(lambda: reachable(lab, pairs, ips), t0, 60)
        out["seed.direct_s"] = probe.wait_until(
            lambda: on_direct_paths(lab, hosts) and all_direct_ttl(lab, pairs, ips), t0, 90
        )
        up = out["seed.sockets_s"]
        for k in ("reach", "direct"):  # the protocol's share, without the interpreter's start-up
            t = out[f"seed.{k}_s"]
            out[f"seed.{k}_after_up_s"] = t - up if t is not None and up is not None else None
        out |= idle_fields(
            probe.measure_idle(lab, {h: p.pid for h, p in mesh.procs.items()}, window, "wireguard-go"), "n4"
        )
        lab.set_address("charlie", "192.168.1.33")
        t1 = time.monotonic()
        back = [(h, "charlie") for h in ("alpha", "beta", "delta")]
        out["seed.roam_s"] = probe.wait_until(lambda: reachable(lab, back, ips), t1, 30)
        if out["seed.roam_s"] is None:
            lost = [p for p, t in probe.ttls(lab, back, ips).items() if t is None]
            print(f"  roaming: still unreachable after 30 s: {lost} (logs: {mesh.logs})", file=sys.stderr)
        return out


def run_seed_nebula(window: float) -> Result:
    with lab_up("seed-basic") as lab, NebulaMesh(lab, lighthouse="beta") as neb:
        neb.start_all(ROOT / ".lab" / f"logs-{lab.prefix}")
        t0 = time.monotonic()
        pairs = all_pairs(neb.hosts)
        out: Result = {
            "seed.reach_s": probe.wait_until(lambda: reachable(lab, pairs, neb.ips), t0, 60),
            "seed.direct_s": probe.wait_until(lambda: all_direct_ttl(lab, pairs, neb.ips), t0, 90),
        }
        return out | idle_fields(
            probe.measure_idle(lab, {h: p.pid for h, p in neb.procs.items()}, window), "n4"
        )


def run_gateway_loss() -> Result:
    with lab_up("hard-nat-2gw") as lab, agents(lab) as (mesh, t0):
        hosts, ips = mesh.hosts, {h: mesh.wg_ip(h) for h in mesh.hosts}
        if probe.wait_until(lambda: reachable(lab, all_pairs(hosts), ips), t0, 60) is None:
            return {"gw.loss_s": None}

        def gateway() -> Optional[str]:
            st = probe.status(lab, "alpha") or {"peers": []}
            return next((p["gateway"] for p in st["peers"] if p["name"] == "charlie"), None)

        probe.wait_until(gateway, time.monotonic(), 30)
        gw = gateway() or "beta"
        lab.isolate_host(gw)
        t1 = time.monotonic()
        survivors = all_pairs([h for h in hosts if h != gw])
        return {"gw.loss_s": probe.wait_until(lambda: reachable(lab, survivors, ips), t1, 60)}


def run_scale(n: int, window: float) -> Result:
    with lab_up(f"scale-{n}") as lab, agents(lab, subnet="10.1.0.0/16") as (mesh, t0):
        hosts = mesh.hosts
        tag = f"n{n}"
        out: Result = {f"{tag}.converged_s": probe.wait_until(lambda: converged(lab, hosts), t0, 150, 0.5)}
        # Some pairs may stay relayed (punching gave up): wait a bounded time, then count them.
        out[f"{tag}.direct_s"] = probe.wait_until(lambda: on_direct_paths(lab, hosts), t0, 60, 0.5)
        out |= idle_fields(
            probe.measure_idle(lab, {h: p.pid for h, p in mesh.procs.items()}, window, "wireguard-go"), tag
        )
        paths = [p["path"] for h in hosts for p in (probe.status(lab, h) or {"peers": []})["peers"]]
        out[f"{tag}.direct_pct"] = 100 * sum(p in DIRECT_PATHS for p in paths) / (n * (n - 1))
        return out


def median_of(runs: list[Result]) -> dict[str, Any]:
    """Per key: the median of the runs that produced a value, and how many timed out."""
    keys = {k for r in runs for k in r}
    out: dict[str, Any] = {}
    for k in sorted(keys):
        vals = [v for r in runs if (v := r.get(k)) is not None]
        out[k] = {
            "median": statistics.median(vals) if vals else None,
            "runs": len(runs),
            "failed": len(runs) - len(vals),
        }
    return out


def repeat(what: str, runs: int, fn: Callable[[], Result]) -> dict[str, Any]:
    results = []
    for i in range(runs):
        t = time.monotonic()
        results.append(fn())
        print(
            f"  {what} run {i + 1}/{runs}: {time.monotonic() - t:.0f} s  {fmt_run(results[-1])}",
            file=sys.stderr,
        )
    return median_of(results)


def fmt_run(r: Result) -> str:
    return " ".join(
        f"{k}={v:.2f}" if v is not None else f"{k}=timeout" for k, v in r.items() if k.endswith("_s")
    )


def sim_figures(sizes: list[int]) -> tuple[dict[str, Any], str]:
    """Idle control traffic per node from bench/sim_scale.py's run(n) (admin datagrams only:
    the simulator has no WireGuard keepalives), for the sizes asked for with --sim."""
    if not sizes:
        return (
            {},
            "N=200/1000 (simulated, control traffic only): `bench/sim_scale.py 200 1000`, or --sim 200,1000",
        )
    try:
        import sim_scale  # type: ignore[import-not-found]
    except ImportError:
        return {}, "TODO: N=200/1000 idle traffic: bench/sim_scale.py is not there"
    out = {}
    for n in sizes:
        _, _, pkts, size, _ = sim_scale.run(n)
        out[f"n{n}.sim_bytes_s"] = {"median": size, "runs": 1, "failed": 0}
        out[f"n{n}.sim_pkts_s"] = {"median": pkts, "runs": 1, "failed": 0}
    return out, ""


def versions() -> dict[str, str]:
    wg = subprocess.run(
        ["wireguard-go", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    import wg_netmanager

    return {
        "wg_netmanager": getattr(wg_netmanager, "__version__", "?"),
        "wireguard-go": wg[1].lstrip("v") if len(wg) > 1 else "?",
        "nebula": nebula_version(),
    }


# (label, key in our results, key in Nebula's results or "", number format)
ROWS = [
    ("seed-basic: agents' status sockets answer (s)", "seed.sockets_s", "", "{:.2f}"),
    ("seed-basic: all pairs reachable (s)", "seed.reach_s", "seed.reach_s", "{:.2f}"),
    ("seed-basic: all pairs direct, TTL 64 (s)", "seed.direct_s", "seed.direct_s", "{:.2f}"),
    ("seed-basic: reachable, from sockets answering (s)", "seed.reach_after_up_s", "seed.reach_s", "{:.2f}"),
    ("seed-basic: direct, from sockets answering (s)", "seed.direct_after_up_s", "seed.direct_s", "{:.2f}"),
    ("seed-basic: charlie roams, reached again (s)", "seed.roam_s", "", "{:.2f}"),
    ("hard-nat-2gw: gateway isolated, rerouted (s)", "gw.loss_s", "", "{:.2f}"),
    ("N=4: idle tx per node (B/s)", "n4.tx_bytes_s", "n4.tx_bytes_s", "{:.0f}"),
    ("N=4: idle tx per node (packets/s)", "n4.tx_pkts_s", "n4.tx_pkts_s", "{:.2f}"),
    ("N=4: RSS per node, daemon (MB)", "n4.rss_mb", "n4.rss_mb", "{:.1f}"),
    ("N=4: RSS per node, wireguard-go (MB)", "n4.wg_rss_mb", "", "{:.1f}"),
    ("N=4: RSS per node, daemon + wireguard-go (MB)", "n4.total_rss_mb", "n4.rss_mb", "{:.1f}"),
    ("N=4: idle CPU per node, daemon (% of a core)", "n4.cpu_pct", "n4.cpu_pct", "{:.2f}"),
    ("N=4: idle CPU per node, wireguard-go (%)", "n4.wg_cpu_pct", "", "{:.2f}"),
]
RATIO_KEYS = {
    "seed.reach_s",
    "seed.direct_s",
    "seed.reach_after_up_s",
    "seed.direct_after_up_s",
    "n4.rss_mb",
    "n4.total_rss_mb",
}


def scale_rows(n: int) -> list[tuple[str, str, str, str]]:
    return [
        (f"scale-{n}: all agents converged (s)", f"n{n}.converged_s", "", "{:.1f}"),
        (f"scale-{n}: all paths direct (s)", f"n{n}.direct_s", "", "{:.1f}"),
        (f"scale-{n}: paths direct after the idle window (%)", f"n{n}.direct_pct", "", "{:.0f}"),
        (f"N={n}: idle tx per node (B/s)", f"n{n}.tx_bytes_s", "", "{:.0f}"),
        (f"N={n}: idle tx per node (packets/s)", f"n{n}.tx_pkts_s", "", "{:.2f}"),
        (f"N={n}: RSS per node, agent / wireguard-go (MB)", f"n{n}.rss_mb", "", "{:.1f}"),
        (f"N={n}: idle CPU per node, agent (%)", f"n{n}.cpu_pct", "", "{:.2f}"),
    ]


def cell(res: dict[str, Any], key: str, fmt: str) -> str:
    if not key or key not in res:
        return "-"
    r = res[key]
    if r["median"] is None:
        return "timeout"
    text = fmt.format(r["median"])
    return text + (f" ({r['failed']}/{r['runs']} t/o)" if r["failed"] else "")


def render(
    ours: dict[str, Any],
    neb: dict[str, Any],
    scales: list[int],
    sims: list[int],
    header: str,
    notes: list[str],
) -> str:
    rows = list(ROWS)
    for n in scales:
        rows += scale_rows(n)
    for n in sims:
        if f"n{n}.sim_bytes_s" in ours:
            rows += [
                (f"N={n} (simulated): idle control tx per node (B/s)", f"n{n}.sim_bytes_s", "", "{:.0f}"),
                (
                    f"N={n} (simulated): idle control tx per node (packets/s)",
                    f"n{n}.sim_pkts_s",
                    "",
                    "{:.2f}",
                ),
            ]
    width = max(len(r[0]) for r in rows) + 2
    lines = [header, f"{'metric':<{width}}{'wg_netmanager':>16}{'nebula':>10}{'ratio':>8}"]
    for label, k, nk, fmt in rows:
        ours_txt = cell(ours, k, fmt)
        if k.startswith("n") and k.endswith(".rss_mb") and k != "n4.rss_mb" and f"{k[:-7]}.wg_rss_mb" in ours:
            ours_txt += " / " + cell(ours, f"{k[:-7]}.wg_rss_mb", fmt)
        ratio = "-"
        if k in RATIO_KEYS and nk in neb:
            a, b = ours.get(k, {}).get("median"), neb[nk]["median"]
            ratio = f"{a / b:.2f}" if a is not None and b else "-"
        lines.append(f"{label:<{width}}{ours_txt:>16}{cell(neb, nk, fmt):>10}{ratio:>8}")
    return "\n".join(lines + notes)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median); default 3")
    ap.add_argument(
        "--scale", default="20", help="lab sizes for idle traffic, e.g. 20,50 ('' for none); default 20"
    )
    ap.add_argument("--sim", default="", help="simulated sizes from bench/sim_scale.py, e.g. 200,1000 (slow)")
    ap.add_argument("--scale-runs", type=int, default=1, help="runs per scale-N lab; default 1 (time)")
    ap.add_argument("--window", type=float, default=10.0, help="idle window in seconds; default 10")
    ap.add_argument("--no-nebula", action="store_true", help="skip the Nebula reference")
    ap.add_argument("--json", metavar="FILE", help="also write every median as JSON ('-': stdout)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/convergence.py: needs root (lab namespaces)", file=sys.stderr)
        return 2
    scales = [int(n) for n in args.scale.split(",") if n.strip()]
    sims = [int(n) for n in args.sim.split(",") if n.strip()]
    load = os.getloadavg()
    started = time.monotonic()
    ver = versions()

    ours = repeat("seed-basic agents", args.runs, lambda: run_seed_agents(args.window))
    neb = (
        {} if args.no_nebula else repeat("seed-basic nebula", args.runs, lambda: run_seed_nebula(args.window))
    )
    ours |= repeat("hard-nat-2gw gateway loss", args.runs, run_gateway_loss)
    for n in scales:
        ours |= repeat(f"scale-{n}", args.scale_runs, lambda n=n: run_scale(n, args.window))
    total = [r["median"] for r in (ours["n4.rss_mb"], ours.get("n4.wg_rss_mb", {"median": None}))]
    if None not in total:
        ours["n4.total_rss_mb"] = {"median": sum(total), "runs": args.runs, "failed": 0}
    sim, todo = sim_figures(sims)
    ours |= sim

    cmd = "bench/convergence.py" + "".join(
        " " + shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    header = (
        f"wg_netmanager {ver['wg_netmanager']} benchmark, {datetime.date.today()}, `{cmd}`, "
        f"wireguard-go {ver['wireguard-go']}, Nebula {ver['nebula']}\n"
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; "
        f"medians of {args.runs} runs (scale-N: {args.scale_runs}); idle window {args.window:.0f} s; "
        f"times from the last process spawned"
    )
    notes = [f"(took {time.monotonic() - started:.0f} s)"] + ([todo] if todo else [])
    for n in scales:
        if ours.get(f"n{n}.converged_s", {}).get("failed"):
            notes.append(
                f"scale-{n} did not converge in every run: its idle figures include convergence traffic"
            )
    print(render(ours, neb, scales, sims, header, notes))
    if args.json:
        doc = {
            "date": str(datetime.date.today()),
            "command": cmd,
            "loadavg": load,
            "versions": ver,
            "runs": args.runs,
            "scale_runs": args.scale_runs,
            "window_s": args.window,
            "wg_netmanager": ours,
            "nebula": neb,
            "todo": todo,
        }
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
