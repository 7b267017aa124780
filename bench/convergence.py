"""Convergence, roaming, gateway loss, idle traffic and memory of real agents on the lab, side
by side with Nebula 1.6 on the same topology. Prints one table (medians of --runs runs).

    .venv/bin/python bench/convergence.py [--runs 3] [--scale 20,50] [--no-nebula] [--json out.json]

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
from functools import partial
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "lab"), str(ROOT / "bench")]

import probe  # noqa: E402
from meshlab import Mesh  # noqa: E402
from nebula import NebulaMesh, public_hosts  # noqa: E402
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


def sample_pairs(hosts: list[str], limit: int) -> list[tuple[str, str]]:
    """All ordered pairs, or (with `limit` below their number) every host pinging the same
    number k = limit // n of others at offsets spread over the ring, so every host is a source
    k times and a target k times."""
    n = len(hosts)
    if not limit or n * (n - 1) <= limit:
        return all_pairs(hosts)
    k = max(1, limit // n)
    offsets = sorted({1 + j * (n - 1) // k for j in range(k)})
    return [(hosts[i], hosts[(i + o) % n]) for i in range(n) for o in offsets]


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


def best_path(host: str, peer: dict[str, Any], statics: set[str]) -> bool:
    """`peer` (an entry of `host`'s status) is on its best path: direct (lan/nat/static) between
    two members or two static nodes. A member talks to two "home" static nodes only (README.md,
    "Home static nodes") and reaches the others through one of them, so between a member and
    a static node a gateway path is as intended as a static one."""
    mixed = (host in statics) != (peer["name"] in statics)
    return peer["path"] in DIRECT_PATHS or (mixed and peer["path"] == "gateway")


Statuses = dict[str, Optional[dict[str, Any]]]
Ttls = dict[tuple[str, str], Optional[int]]


def statuses(lab: Lab, hosts: list[str]) -> Statuses:
    return {h: probe.status(lab, h) for h in hosts}


def converged(sts: Statuses) -> bool:
    """Every agent says it has converged, and lists every other node."""
    return all(st and st["converged"] and len(st["peers"]) == len(sts) - 1 for st in sts.values())


def on_best_paths(sts: Statuses, statics: set[str]) -> bool:
    """Every agent lists every other node, each on its best path."""
    return all(
        st and len(st["peers"]) == len(sts) - 1 and all(best_path(h, p, statics) for p in st["peers"])
        for h, st in sts.items()
    )


def idle_fields(idle: probe.Idle, tag: str) -> Result:
    """The idle figures under `tag`; total_* are what one node costs: the daemon plus its
    wireguard-go (Nebula has none: its total is the daemon's)."""
    return {
        f"{tag}.tx_bytes_s": idle.tx_bytes_s,
        f"{tag}.tx_pkts_s": idle.tx_pkts_s,
        f"{tag}.rss_mb": idle.rss_mb,
        f"{tag}.cpu_pct": idle.cpu_pct,
        f"{tag}.wg_rss_mb": idle.wg_rss_mb,
        f"{tag}.wg_cpu_pct": idle.wg_cpu_pct,
        f"{tag}.total_rss_mb": idle.rss_mb + (idle.wg_rss_mb or 0.0),
        f"{tag}.total_cpu_pct": idle.cpu_pct + (idle.wg_cpu_pct or 0.0),
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
    with lab_up("seed-basic") as lab, NebulaMesh(lab, lighthouse=public_hosts(lab)[0]) as neb:
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


def run_scale(n: int, window: float, timeout: float, max_pairs: int) -> Result:
    """Our agents on scale-N: converged by their own status, and by pings (the same probe as
    Nebula's), all on one clock; some pairs may stay relayed (punching gave up), so "best
    path" is bounded by `timeout` and the share of paths on their best path is counted after
    the idle window."""
    with lab_up(f"scale-{n}") as lab, agents(lab, subnet="10.1.0.0/16") as (mesh, t0):
        hosts, ips, tag = mesh.hosts, {h: mesh.wg_ip(h) for h in mesh.hosts}, f"n{n}"
        pairs, statics = sample_pairs(hosts, max_pairs), set(public_hosts(lab))
        direct = [(a, b) for a, b in pairs if (a in statics) == (b in statics)]  # see best_path

        def sample() -> tuple[Statuses, Ttls]:
            return statuses(lab, hosts), probe.ttls(lab, pairs, ips, 0.3)

        def best(sts: Statuses, ttls: Ttls) -> bool:
            answered = all(t is not None for t in ttls.values())
            return (
                answered and on_best_paths(sts, statics) and all(ttls[p] == probe.DIRECT_TTL for p in direct)
            )

        times = probe.wait_all(
            sample,
            {
                "converged_s": lambda s: converged(s[0]),
                "reach_s": lambda s: all(t is not None for t in s[1].values()),
                "best_s": lambda s: best(*s),
            },
            t0,
            timeout,
            0.5,
        )
        out: Result = {f"{tag}.{k}": v for k, v in times.items()}
        out |= idle_fields(
            probe.measure_idle(lab, {h: p.pid for h, p in mesh.procs.items()}, window, "wireguard-go"), tag
        )
        peers = [(h, p) for h, st in statuses(lab, hosts).items() for p in (st or {"peers": []})["peers"]]
        out[f"{tag}.best_pct"] = 100 * sum(best_path(h, p, statics) for h, p in peers) / (n * (n - 1))
        return out


def run_scale_nebula(n: int, window: float, timeout: float, max_pairs: int) -> Result:
    """Nebula on the same scale-N topology, the lighthouse on its first public host; the same
    pairs, probes and clock as `run_scale`. Nebula relays nothing here: its best path is the
    direct one for every pair, TTL 64."""
    with lab_up(f"scale-{n}") as lab, NebulaMesh(lab, lighthouse=public_hosts(lab)[0]) as neb:
        neb.start_all(ROOT / ".lab" / f"logs-{lab.prefix}")
        t0 = time.monotonic()
        pairs, tag = sample_pairs(neb.hosts, max_pairs), f"n{n}"
        times = probe.wait_all(
            lambda: probe.ttls(lab, pairs, neb.ips, 0.3),
            {
                "reach_s": lambda ttls: all(t is not None for t in ttls.values()),
                "best_s": lambda ttls: all(t == probe.DIRECT_TTL for t in ttls.values()),
            },
            t0,
            timeout,
            0.5,
        )
        out: Result = {f"{tag}.{k}": v for k, v in times.items()}
        return out | idle_fields(
            probe.measure_idle(lab, {h: p.pid for h, p in neb.procs.items()}, window), tag
        )


def median_of(runs: list[Optional[Result]], keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per key: the median of the runs that produced a value, how many timed out ("failed")
    and how many raised ("errors", a None run: it counts against every key, also `keys`, the
    ones a run would have produced, so a figure that never came still gets its row)."""
    done = [r for r in runs if r is not None]
    out: dict[str, Any] = {}
    for k in sorted({k for r in done for k in r} | set(keys)):
        vals = [v for r in done if (v := r.get(k)) is not None]
        out[k] = {
            "median": statistics.median(vals) if vals else None,
            "runs": len(runs),
            "failed": len(done) - len(vals),
            "errors": len(runs) - len(done),
        }
    return out


def repeat(what: str, runs: int, fn: Callable[[], Result], keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """`runs` runs of `fn`, medians per key. A run that raises is reported and counted as an
    error (its lab is already down: every run brings its own up in a `with`); the bench goes on."""
    results: list[Optional[Result]] = []
    for i in range(runs):
        t = time.monotonic()
        try:
            r: Optional[Result] = fn()
            summary = fmt_run(r or {})
        except Exception as exc:  # noqa: BLE001 - one broken run must not lose the whole table
            r, summary = None, f"error: {exc!r}"
        results.append(r)
        print(f"  {what} run {i + 1}/{runs}: {time.monotonic() - t:.0f} s  {summary}", file=sys.stderr)
    return median_of(results, keys)


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


# (label, key in our results, key in Nebula's results or "", number format). A key "a/b" is
# one cell "A / B". Every row with a Nebula figure gets the ratio ours / Nebula.
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
    ("N=4: RSS per node, daemon + wireguard-go (MB)", "n4.total_rss_mb", "n4.total_rss_mb", "{:.1f}"),
    ("N=4: idle CPU per node, daemon (% of a core)", "n4.cpu_pct", "n4.cpu_pct", "{:.2f}"),
    ("N=4: idle CPU per node, wireguard-go (%)", "n4.wg_cpu_pct", "", "{:.2f}"),
    ("N=4: idle CPU per node, daemon + wireguard-go (%)", "n4.total_cpu_pct", "n4.total_cpu_pct", "{:.2f}"),
]


def scale_rows(n: int, pairs: int) -> list[tuple[str, str, str, str]]:
    t = f"n{n}"
    which = "all pairs" if pairs == n * (n - 1) else f"{pairs} sampled pairs"
    return [
        (f"scale-{n}: all agents converged, status (s)", f"{t}.converged_s", "", "{:.1f}"),
        (f"scale-{n}: {which} reachable, ping (s)", f"{t}.reach_s", f"{t}.reach_s", "{:.1f}"),
        (f"scale-{n}: {which} on their best path (s)", f"{t}.best_s", f"{t}.best_s", "{:.1f}"),
        (f"scale-{n}: paths on their best path after the idle window (%)", f"{t}.best_pct", "", "{:.0f}"),
        (f"N={n}: idle tx per node (B/s)", f"{t}.tx_bytes_s", f"{t}.tx_bytes_s", "{:.0f}"),
        (f"N={n}: idle tx per node (packets/s)", f"{t}.tx_pkts_s", f"{t}.tx_pkts_s", "{:.2f}"),
        (f"N={n}: RSS per node, agent / wireguard-go (MB)", f"{t}.rss_mb/{t}.wg_rss_mb", "", "{:.1f}"),
        (
            f"N={n}: RSS per node, agent + wireguard-go (MB)",
            f"{t}.total_rss_mb",
            f"{t}.total_rss_mb",
            "{:.1f}",
        ),
        (f"N={n}: idle CPU per node, agent / wireguard-go (%)", f"{t}.cpu_pct/{t}.wg_cpu_pct", "", "{:.2f}"),
        (
            f"N={n}: idle CPU per node, agent + wireguard-go (%)",
            f"{t}.total_cpu_pct",
            f"{t}.total_cpu_pct",
            "{:.2f}",
        ),
    ]


def keys_of(rows: list[tuple[str, str, str, str]], column: int, *prefixes: str) -> tuple[str, ...]:
    """The result keys in one column of `rows` (1: ours, 2: Nebula's), those starting with one
    of `prefixes` if given: what a run is expected to produce, for `repeat`."""
    keys = (k for r in rows for k in r[column].split("/") if k)
    return tuple(k for k in keys if not prefixes or k.startswith(prefixes))


def cell(res: dict[str, Any], key: str, fmt: str) -> str:
    if "/" in key:
        return " / ".join(cell(res, k, fmt) for k in key.split("/"))
    if not key or key not in res:
        return "-"
    r = res[key]
    if r["median"] is None:
        return "error" if r.get("errors") == r["runs"] else "timeout"
    text = fmt.format(r["median"])
    lost = [f"{r[k]}/{r['runs']} {tag}" for k, tag in (("failed", "t/o"), ("errors", "err")) if r.get(k)]
    return text + (f" ({', '.join(lost)})" if lost else "")


def ratio(ours: dict[str, Any], neb: dict[str, Any], key: str, nkey: str) -> str:
    a = ours.get(key, {}).get("median")
    b = neb.get(nkey, {}).get("median")
    return f"{a / b:.2f}" if a is not None and b else "-"


def render(
    ours: dict[str, Any],
    neb: dict[str, Any],
    scales: list[tuple[int, int]],
    sims: list[int],
    header: str,
    notes: list[str],
) -> str:
    """`scales`: (N, number of pairs pinged) per scale-N lab."""
    rows = list(ROWS)
    for n, pairs in scales:
        rows += scale_rows(n, pairs)
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
        lines.append(
            f"{label:<{width}}{cell(ours, k, fmt):>16}{cell(neb, nk, fmt):>10}{ratio(ours, neb, k, nk):>8}"
        )
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
    ap.add_argument(
        "--scale-timeout", type=float, default=180.0, help="scale-N: seconds to wait per figure; default 180"
    )
    ap.add_argument(
        "--scale-pairs",
        type=int,
        default=0,
        help="scale-N: ping at most this many ordered pairs, a fixed sample (default 0: all pairs)",
    )
    ap.add_argument("--no-nebula", action="store_true", help="skip the Nebula reference")
    ap.add_argument("--json", metavar="FILE", help="also write every median as JSON ('-': stdout)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/convergence.py: needs root (lab namespaces)", file=sys.stderr)
        return 2
    scales = [int(n) for n in args.scale.split(",") if n.strip()]
    npairs = {n: len(sample_pairs([str(i) for i in range(n)], args.scale_pairs)) for n in scales}
    sims = [int(n) for n in args.sim.split(",") if n.strip()]
    load = os.getloadavg()
    started = time.monotonic()
    ver = versions()

    seed = ("seed.", "n4.")
    ours = repeat(
        "seed-basic agents", args.runs, lambda: run_seed_agents(args.window), keys_of(ROWS, 1, *seed)
    )
    neb: dict[str, Any] = {}
    if not args.no_nebula:
        neb = repeat(
            "seed-basic nebula", args.runs, lambda: run_seed_nebula(args.window), keys_of(ROWS, 2, *seed)
        )
    ours |= repeat("hard-nat-2gw gateway loss", args.runs, run_gateway_loss, keys_of(ROWS, 1, "gw."))
    for n in scales:
        scale_args = (n, args.window, args.scale_timeout, args.scale_pairs)
        rows = scale_rows(n, npairs[n])
        ours |= repeat(f"scale-{n}", args.scale_runs, partial(run_scale, *scale_args), keys_of(rows, 1))
        if not args.no_nebula:
            neb |= repeat(
                f"scale-{n} nebula",
                args.scale_runs,
                partial(run_scale_nebula, *scale_args),
                keys_of(rows, 2),
            )
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
        f"times from the last process spawned; scale-N figures bounded by {args.scale_timeout:.0f} s"
    )
    notes = [f"(took {time.monotonic() - started:.0f} s)"] + ([todo] if todo else [])
    for n in scales:
        if ours.get(f"n{n}.converged_s", {}).get("failed"):
            notes.append(
                f"scale-{n} did not converge in every run: its idle figures include convergence traffic"
            )
    print(render(ours, neb, [(n, npairs[n]) for n in scales], sims, header, notes))
    if args.json:
        doc = {
            "date": str(datetime.date.today()),
            "command": cmd,
            "loadavg": load,
            "versions": ver,
            "runs": args.runs,
            "scale_runs": args.scale_runs,
            "scale_timeout_s": args.scale_timeout,
            "scale_pairs": npairs,
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
