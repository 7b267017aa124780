"""The simulator's soak (tests/sim/soak.py) for days: churn every 1-5 minutes (joins, leaves,
crashes, roaming, static nodes going down and coming back), every event's time to heal, the
worst one, and whether what the nodes hold and the memory stay flat.

Run: .venv/bin/python bench/soak.py 7        (simulated days; a week takes ~15 min of CPU)
     .venv/bin/python bench/soak.py 1 --seed 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "sim"))

import soak  # noqa: E402


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("days", type=float, nargs="?", default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    print(f"$ python bench/soak.py {' '.join(argv)}", flush=True)
    start = time.monotonic()
    report = soak.run(args.days * 24, seed=args.seed, track_memory=True)
    print(soak.table(report))
    for failure in report.failures[:20]:
        print("FAILURE", failure)
    events, wall = sum(report.events.values()), time.monotonic() - start
    print(f"{args.days:g} simulated days, {events} events, {wall:.0f} s wall")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
