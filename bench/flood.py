"""Junk at a live static node: how much one agent drops per second while the mesh stays up.

    .venv/bin/python bench/flood.py [--seconds 10] [--senders 2]
    .venv/bin/python bench/flood.py --sender c --rate 100000 --senders 1

Root only. seed-basic with real agents; once every pair pings, SENDERS processes in alpha's
namespace send datagrams to beta's control port as fast as they can for SECONDS: junk without
the shared key (with the protocol's magic, so it reaches the mac1 check) and a member's
forgeries of another node's key (mac1 right, decryption fails). Printed: datagrams sent per
second, dropped and counted by beta's agent per second, lost in beta's kernel socket buffer
(the agent could not keep up), beta's agent CPU, how many ordered pairs missed a ping during
the flood (all pinged every 0.5 s), and how long after the flood every pair pings again.
The senders run on the same machine (2 vCPUs here): they take CPU from the agent too. With
`--sender c` the datagrams (made by the same Python code) are sent by bench/flood.c, compiled
with gcc into .lab/, at `--rate` per second per sender (0: as fast as the kernel takes them),
which leaves the agent a core of its own. `--pin` (the default on 2 or more CPUs) makes that
explicit: this process and everything it starts (the lab, every other agent, wireguard-go,
the pings, the senders) run on CPU 0, and beta's agent alone on CPU 1.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "lab"), str(ROOT / "bench")]

import probe  # noqa: E402
from meshlab import PYTHON, Mesh, wait_for  # noqa: E402

from lab import Lab  # noqa: E402

SENDER = r"""
import base64, os, socket, sys, time
from wg_netmanager.core import wire
from wg_netmanager.core.wire import Codec, Identity
kind, seconds = sys.argv[1], float(sys.argv[2])
beta_key, shared = base64.b64decode(sys.argv[3]), base64.b64decode(sys.argv[4])
compiled, rate = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, "0")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("198.51.100.2", 50001))
if kind == "junk":
    batch = [wire.MAGIC + bytes((wire.WIRE_VERSION, wire.KIND_SEALED)) + os.urandom(200) for _ in range(64)]
else:  # a member forging another node's key: mac1 right, beta's run right, the rest fails
    codec, other = Codec(shared, Identity(os.urandom(32)), 5), Identity(os.urandom(32)).public
    s.settimeout(5)
    s.send(codec.keyreq(1))
    epoch = codec.open(s.recv(2000)).epoch
    batch = []
    for _ in range(64):
        d = bytearray(codec.seal(4, os.urandom(120), beta_key, epoch))
        d[6:38] = other
        d[-16:] = wire.blake(bytes(d[:-16]), codec.mac1_key(beta_key), 16)
        batch.append(bytes(d))
if compiled:  # the C sender sends the batch: a file of count, then length and bytes each
    import struct, tempfile
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(struct.pack("<I", len(batch)) + b"".join(struct.pack("<H", len(d)) + d for d in batch))
    s.close()
    os.execv(compiled, [compiled, f.name, "198.51.100.2", "50001", str(seconds), rate])
sent, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    for d in batch:
        try:
            s.send(d)
            sent += 1
        except OSError:
            pass
print(sent)
"""


def udp_rcvbuf_errors(lab: Lab, host: str) -> int:
    out = lab.host(host).run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    udp = [line.split() for line in out if line.startswith("Udp:")]
    return int(udp[1][udp[0].index("RcvbufErrors")])


def compile_sender() -> str:
    """bench/flood.c, compiled into .lab/ (again when the source is newer)."""
    src, out = ROOT / "bench" / "flood.c", ROOT / ".lab" / "flood"
    out.parent.mkdir(exist_ok=True)
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(src)], check=True)
    return str(out)


def flood(
    kind: str, seconds: float, senders: int, compiled: str | None = None, rate: int = 0, pin: bool = False
) -> dict[str, float]:
    prefix = "bnf" + os.urandom(3).hex()
    with Lab.up("seed-basic", prefix=prefix) as lab:
        mesh = Mesh(lab, extra_args=())
        try:
            mesh.start_all()
            mesh.wait_started(60)
            wait_for(mesh.all_ping, 60, what="every pair pings")
            st = mesh.status("beta")
            assert st is not None
            beta_key = st["publicKey"]
            drops_before = sum(st["drops"].values())
            buf_before = udp_rcvbuf_errors(lab, "beta")
            pid = mesh.procs["beta"].pid
            if pin:
                os.sched_setaffinity(pid, {1})  # the agent under test: a core of its own
            cpu_before = probe.cpu_seconds(pid)
            argv = [PYTHON, "-c", SENDER, kind, str(seconds), beta_key, mesh.shared_key]
            if compiled:
                argv += [compiled, str(rate)]
            procs = [lab.host("alpha").popen(argv, stdout=-1) for _ in range(senders)]
            lost: list[str] = []
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    lost.extend(f"{a}>{b}" for a, b in mesh.unreachable(0.5))

            watcher = threading.Thread(target=watch)
            t0 = time.monotonic()
            watcher.start()
            sent = sum(int(p.communicate(timeout=seconds + 60)[0] or 0) for p in procs)
            elapsed = time.monotonic() - t0
            stop.set()
            watcher.join()
            cpu = (probe.cpu_seconds(pid) or 0.0) - (cpu_before or 0.0)
            st = mesh.status("beta")
            assert st is not None
            dropped = sum(st["drops"].values()) - drops_before
            overflow = udp_rcvbuf_errors(lab, "beta") - buf_before
            try:
                after = wait_for(mesh.all_ping, 30, what="every pair pings after the flood")
            except AssertionError:
                after = float("inf")
            return {
                "sent/s": sent / elapsed,
                "dropped/s": dropped / elapsed,
                "overflow/s": overflow / elapsed,
                "cpu%": 100 * cpu / elapsed,
                "pairs lost": len(set(lost)),
                "whole again after s": after,
            }
        finally:
            mesh.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--sender", choices=("python", "c"), default="python")
    ap.add_argument("--rate", type=int, default=0, help="datagrams/s per C sender (0: unpaced)")
    ap.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=(os.cpu_count() or 1) >= 2,
        help="beta's agent alone on CPU 1, everything else on CPU 0 (default with 2+ CPUs)",
    )
    args = ap.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})  # inherited by the lab, the agents and the senders
    compiled = compile_sender() if args.sender == "c" else None
    load = os.getloadavg()
    print(
        f"wg_netmanager flood benchmark, {datetime.date.today()}, `bench/flood.py --seconds {args.seconds:g} "
        f"--senders {args.senders} --sender {args.sender} --rate {args.rate}"
        f"{'' if args.pin else ' --no-pin'}`, seed-basic, "
        f"load {load[0]:.2f} on {os.cpu_count()} CPUs"
    )
    heads = ("sent/s", "dropped/s", "overflow/s", "agent CPU %", "pairs lost", "whole after s")
    print(f"{'flood':10} " + " ".join(f"{h:>11}" for h in heads))
    for kind in ("junk", "forged"):
        r = flood(kind, args.seconds, args.senders, compiled, args.rate, args.pin)
        cells = [f"{r[k]:11.0f}" for k in ("sent/s", "dropped/s", "overflow/s", "cpu%", "pairs lost")]
        after = r["whole again after s"]
        print(f"{kind:10} " + " ".join(cells) + (f" {after:11.1f}" if after < 1e9 else f" {'>30':>11}"))


if __name__ == "__main__":
    main()
