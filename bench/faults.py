"""The lab's fault suite run several times, its figures printed as one table: per fault, the
seconds until every pair answers again, the pings lost, and each case's own figures, as
min / median / max over the runs. The figures of the README's "Failure behaviour" table.

    .venv/bin/python bench/faults.py [--runs 3] [-k EXPR] [--json out.json]
    .venv/bin/python bench/faults.py --table out.json     # the table of an earlier run again

Root only (lab namespaces). Each run is one pytest of tests/lab/test_faults.py,
test_faults_net.py and test_static_restart.py (about 9 minutes on 2 vCPUs); the tests keep
their figures in the file named by WGN_FIGURES (tests/lab/figures.py). A run whose tests fail
still counts for the figures it printed, and the failure is reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FILES = ["tests/lab/test_faults.py", "tests/lab/test_faults_net.py", "tests/lab/test_static_restart.py"]
PYTHON = ROOT / ".venv" / "bin" / "python"


def one_run(k: str, log: Path) -> tuple[int, list[dict[str, Any]]]:
    """One pytest of the fault files; its exit code and the figures its cases kept."""
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as out:
        path = Path(out.name)
    env = {**os.environ, "WGN_FIGURES": str(path)}
    cmd = [str(PYTHON), "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *FILES]
    if k:
        cmd += ["-k", k]
    try:
        with log.open("a") as f:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    finally:
        path.unlink(missing_ok=True)
    return rc, rows


def table(rows: list[dict[str, Any]], runs: int) -> str:
    """One line per case, in the order the cases ran; each figure as min-max (median)."""
    by: dict[str, dict[str, list[float]]] = {}
    units: dict[str, str] = {}
    for r in rows:
        by.setdefault(r["case"], {}).setdefault(r["figure"], []).append(r["value"])
        units[r["figure"]] = r["unit"]
    lines = ["| fault | runs | figures: min-max (median) |", "|---|---|---|"]
    for case, figures in by.items():
        cells = []
        for name, values in figures.items():
            unit = units[name]
            fmt = "{:.0f}" if unit == "pings" else "{:.1f}"
            lo, mid, hi = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
            span = lo if lo == hi else f"{lo}-{hi} ({mid})"
            cells.append(f"{name} {span}" + {"s": " s", "pings": ""}.get(unit, f" {unit}"))
        seen = max(len(v) for v in figures.values())
        lines.append(f"| {case} | {seen}/{runs} | " + "; ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-k", default="", help="pytest -k expression: only these cases")
    ap.add_argument("--json", type=Path, help="also write every figure of every run here")
    ap.add_argument("--log", type=Path, default=Path("/tmp/bench-faults.log"), help="pytest's output")
    ap.add_argument(
        "--table", type=Path, metavar="JSON", help="print the table of a --json file, run nothing"
    )
    args = ap.parse_args(argv)
    if args.table:
        saved = json.loads(args.table.read_text())
        print(f"wg_netmanager fault suite, {saved['date']}, {saved['runs']} runs\n")
        print(table(saved["figures"], saved["runs"]))
        return 0
    if os.geteuid() != 0:
        print("bench/faults.py: needs root (lab namespaces)", file=sys.stderr)
        return 2
    args.log.write_text("")
    print(f"$ python bench/faults.py {' '.join(argv)}", flush=True)
    rows: list[dict[str, Any]] = []
    failed = []
    for i in range(1, args.runs + 1):
        start = time.monotonic()
        rc, got = one_run(args.k, args.log)
        for r in got:
            r["run"] = i
        rows += got
        took = time.monotonic() - start
        print(f"run {i}/{args.runs}: {len(got)} figures, pytest exit {rc}, {took:.0f} s", flush=True)
        if rc != 0:
            failed.append(i)
    day = datetime.date.today().isoformat()
    print(f"\nwg_netmanager fault suite, {day}, {os.cpu_count()} CPUs, {args.runs} runs", end="")
    print(f" (pytest output: {args.log})\n")
    print(table(rows, args.runs))
    if failed:
        print(f"\nruns with failing tests: {failed} (see {args.log})")
    if args.json:
        args.json.write_text(json.dumps({"date": day, "runs": args.runs, "figures": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
