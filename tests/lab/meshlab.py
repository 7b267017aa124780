"""Run real agents on lab hosts: configs, processes, status, pings. Used by tests and bench."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from lab import Lab
from lab.pings import losses

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SUBNET = "10.1.1.0/24"
DIRECT_TTL = 64  # a gateway decrements the TTL of what it forwards
# The direct paths seed-basic allows: charlie and delta share a LAN, alpha punches through.
SEED_BASIC_PATHS = [("charlie", "delta", "lan"), ("alpha", "charlie", "nat"), ("alpha", "delta", "nat")]


def wait_for(cond: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "") -> float:
    """Poll `cond` until truthy; return the seconds it took. Raises on timeout."""
    start = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        time.sleep(interval)


class Mesh:
    def __init__(
        self,
        lab: Lab,
        hosts: Optional[list[str]] = None,
        subnet: str = SUBNET,
        extra_args: tuple[str, ...] = ("-v",),
    ) -> None:
        self.lab = lab
        self.hosts = hosts or lab.mesh_hosts
        self.subnet = subnet
        self.extra_args = extra_args
        self.shared_key = base64.b64encode(os.urandom(32)).decode()
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.started: set[str] = set()
        self.vars = {h: lab.topology.nodes[h].vars for h in self.hosts}
        self.logs = ROOT / ".lab" / f"logs-{lab.prefix}"
        self.logs.mkdir(parents=True, exist_ok=True)

    def wg_ip(self, host: str) -> str:
        return str(self.vars[host]["wg_ip"])

    def net_yaml(self) -> dict[str, Any]:
        peers = {}
        for h in self.hosts:
            ep = self.vars[h].get("wg_static_endpoint")
            if ep:
                port = int(ep.rsplit(":", 1)[1])
                peers[h] = {"endPoint": ep, "adminPort": port + 1, "wgIp": self.wg_ip(h)}
        return {"network": {"sharedKey": self.shared_key, "subnet": self.subnet}, "peers": peers}

    def write_configs(self, host: str, net: Optional[dict[str, Any]] = None) -> None:
        path = self.lab.host(host).path("/etc/wg_netmanager/net.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(net or self.net_yaml()))
        path.chmod(0o600)

    def command(self, host: str, wg_ip: str) -> list[str]:
        """The agent's command line on `host` (a subclass may use another form)."""
        return [
            PYTHON, "-m", "wg_netmanager",
            "-c", "/etc/wg_netmanager/net.yaml",
            "-i", "wg0", "-a", wg_ip, "-n", host, *self.extra_args,
        ]  # fmt: skip

    def start(self, host: str, wg_ip: Optional[str] = None, net: Optional[dict[str, Any]] = None) -> None:
        self.write_configs(host, net)
        log = open(self.logs / f"{host}.log", "a" if host in self.started else "w")  # noqa: SIM115
        self.started.add(host)
        cmd = self.command(host, wg_ip or self.wg_ip(host))
        self.procs[host] = self.lab.host(host).popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start_all(self) -> None:
        for h in self.hosts:
            self.start(h)

    def stop(self, host: str, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        proc = self.procs.pop(host)
        proc.send_signal(sig)
        return proc.wait(timeout)

    def status(self, host: str) -> Optional[dict[str, Any]]:
        try:
            r = self.lab.host(host).run(
                [PYTHON, "-m", "wg_netmanager", "status", "--json", "-i", "wg0"], check=False, timeout=30
            )
        except subprocess.TimeoutExpired:  # a loaded machine; the caller polls again
            return None
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def paths(self, host: str) -> dict[str, str]:
        st = self.status(host)
        return {p["name"]: p["path"] for p in st["peers"]} if st else {}

    def ping(self, a: str, b: str, timeout: float = 1.0) -> Optional[int]:
        """TTL of the reply if `a` reaches `b`'s wgIp, else None."""
        r = self.lab.host(a).run(
            ["ping", "-n", "-c1", "-W", str(timeout), self.wg_ip(b)], check=False, timeout=timeout + 5
        )
        m = re.search(r"ttl=(\d+)", r.stdout)
        return int(m.group(1)) if r.returncode == 0 and m else None

    def both_ways(self, a: str, b: str, kind: str) -> bool:
        """`a` and `b` each see the other on a path of this kind."""
        return self.paths(a).get(b) == kind and self.paths(b).get(a) == kind

    def wait_paths(self, expected: list[tuple[str, str, str]], timeout: float = 30) -> None:
        """Until each (a, b, kind) holds both ways, then until every pair answers at TTL 64
        (nothing relayed by a gateway)."""
        wait_for(
            lambda: all(self.both_ways(a, b, kind) for a, b, kind in expected),
            timeout,
            interval=0.5,
            what=f"paths {expected}",
        )
        wait_for(lambda: all(t == DIRECT_TTL for t in self.ttls().values()), 15, what="TTL 64 everywhere")

    def pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for a in self.hosts for b in self.hosts if a != b]

    def ttls(self, timeout: float = 0.5) -> dict[tuple[str, str], Optional[int]]:
        """Ping every pair at once; TTL per pair (None: unreachable)."""
        pairs = self.pairs()
        with ThreadPoolExecutor(len(pairs)) as pool:
            return dict(zip(pairs, pool.map(lambda p: self.ping(p[0], p[1], timeout), pairs)))

    def all_ping(self, timeout: float = 0.5) -> bool:
        return all(t is not None for t in self.ttls(timeout).values())

    def unreachable(self, timeout: float = 0.5) -> list[tuple[str, str]]:
        return [p for p, t in self.ttls(timeout).items() if t is None]

    def wait_started(self, timeout: float = 15) -> float:
        """Wait until every agent answers on its status socket; seconds it took."""
        return wait_for(lambda: all(self.status(h) for h in self.procs), timeout, what="agents up")

    def log(self, host: str) -> str:
        return (self.logs / f"{host}.log").read_text()

    def close(self) -> None:
        for host in list(self.procs):
            try:
                self.stop(host, timeout=5)
            except subprocess.TimeoutExpired:
                self.procs.get(host) and self.procs[host].kill()
            except Exception:
                pass


def pingers(mesh: Mesh) -> dict[tuple[str, str], subprocess.Popen[str]]:
    """Every ordered pair pinging every 0.1 s, until SIGINT (then `losses` of the output)."""
    return {
        (a, b): mesh.lab.host(a).popen(
            ["ping", "-n", "-i", "0.1", "-W", "1", mesh.wg_ip(b)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for a, b in mesh.pairs()
    }


Pingers = dict[tuple[str, str], subprocess.Popen[str]]


def loss_table(procs: Pingers) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Stop the `pingers` and print, per pair, pings sent, lost and the longest run lost."""
    for p in procs.values():
        p.send_signal(signal.SIGINT)
    table = {pair: losses(p.communicate(timeout=10)[0]) for pair, p in procs.items()}
    print("\npair               sent  lost  longest")
    for (a, b), (sent, lost, gap) in sorted(table.items()):
        print(f"{a:>8} -> {b:<8} {sent:5d} {lost:5d} {gap:8d}")
    return table
