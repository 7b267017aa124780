"""Simulated mesh at scale: time to full reachability and idle control traffic per node.

Run: .venv/bin/python bench/sim_scale.py 200 1000:4   (N, or N:number of static nodes)
Topology as tests/sim/test_sim.py::test_large_mesh_converges: N/20 static nodes, the rest
behind NAT routers, at most 32 behind each (one router symmetric).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "sim"))

from simnet import SimNet, scale  # noqa: E402

IDLE_SECONDS = 10.0
DT = 0.25  # simulated seconds per step; 0.5 above 500 nodes (each step costs O(N^2) of CPU)


def build(n: int, statics: Optional[int] = None) -> SimNet:
    return scale(SimNet(seed=7), n, statics)


def run(n: int, statics: Optional[int] = None) -> tuple[int, float, float, float, float]:
    start = time.monotonic()
    net = build(n, statics)
    dt = DT if n <= 500 else 2 * DT
    converged = net.run_until(net.all_reachable, timeout=120, dt=dt)
    for _ in range(int(10 / dt)):  # let probing settle before measuring idle traffic
        net.step(dt)
    packets, size = net.admin_packets, net.admin_bytes
    for _ in range(int(IDLE_SECONDS / dt)):
        net.step(dt)
    per = n * IDLE_SECONDS
    return (
        n,
        converged,
        (net.admin_packets - packets) / per,
        (net.admin_bytes - size) / per,
        time.monotonic() - start,
    )


def main(argv: list[str]) -> None:
    """Sizes as N or N:S (S static nodes instead of N/20)."""
    sizes = [tuple(int(x) for x in a.split(":")) for a in argv] or [(200,), (1000,)]
    print(f"$ python bench/sim_scale.py {' '.join(argv)}")
    print(
        f"{'N':>6} {'static':>6} {'reachable after (sim s)':>24} {'idle dgrams/node/s':>19}"
        f" {'idle B/node/s':>14} {'wall s':>8}"
    )
    for size in sizes:
        statics = size[1] if len(size) > 1 else max(2, size[0] // 20)
        row = run(size[0], statics)
        print(
            f"{row[0]:>6} {statics:>6} {row[1]:>24.2f} {row[2]:>19.2f} {row[3]:>14.0f} {row[4]:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
