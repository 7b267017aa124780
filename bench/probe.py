"""Measurements taken on lab hosts from the controller: status socket, underlay counters,
process RSS and CPU time, parallel pings. Shared by bench/convergence.py and bench/nebula.py.

Everything here reads the host from outside (its per-host /run tree, `ip -n`, /proc), so a
measurement costs no Python start-up inside the namespace, which matters on a loaded machine.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

from lab import Lab

CLK_TCK = os.sysconf("SC_CLK_TCK")
DIRECT_TTL = 64  # a relaying node decrements the TTL of what it forwards


def status(lab: Lab, host: str, interface: str = "wg0") -> Optional[dict[str, Any]]:
    """The agent's status JSON, read straight from its socket under the host's /run tree."""
    path = lab.host(host).path(f"/run/wg_netmanager/{interface}.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(path))
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return json.loads(b"".join(chunks))
    except (OSError, ValueError):
        return None


def ping(lab: Lab, a: str, ip: str, timeout: float = 0.5) -> Optional[int]:
    """TTL of the reply if `a` reaches `ip`, else None."""
    # Plain `ip netns exec` (no mount namespace: ping needs none) keeps a poll round cheap.
    cmd = ["ip", "netns", "exec", lab.host(a).netns, "ping", "-n", "-c1", "-W", str(timeout), ip]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout + 10)
    m = re.search(r"ttl=(\d+)", r.stdout)
    return int(m.group(1)) if r.returncode == 0 and m else None


def ttls(
    lab: Lab, pairs: Iterable[tuple[str, str]], ips: dict[str, str], timeout: float = 0.5
) -> dict[tuple[str, str], Optional[int]]:
    """Ping every pair at once (at most 64 in flight); TTL per pair, None if unreachable."""
    pairs = list(pairs)
    with ThreadPoolExecutor(min(64, max(1, len(pairs)))) as pool:
        return dict(zip(pairs, pool.map(lambda p: ping(lab, p[0], ips[p[1]], timeout), pairs)))


def wait_until(
    cond: Callable[[], Any], since: float, timeout: float, interval: float = 0.05
) -> Optional[float]:
    """Poll `cond`; seconds from `since` (a monotonic time) to the first truthy answer,
    or None after `timeout` seconds. A benchmark records a timeout rather than dying."""
    while True:
        if cond():
            return time.monotonic() - since
        if time.monotonic() - since > timeout:
            return None
        time.sleep(interval)


def netns_pids(lab: Lab, host: str) -> list[int]:
    r = subprocess.run(
        ["ip", "netns", "pids", lab.host(host).netns], capture_output=True, text=True, check=False
    )
    return [int(p) for p in r.stdout.split()]


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def find_pid(lab: Lab, host: str, name: str) -> Optional[int]:
    """The first process called `name` (its /proc comm) in the host's namespace."""
    return next((p for p in netns_pids(lab, host) if comm(p) == name), None)


def rss_kb(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of `pid` (not of its children), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of stat(5)


def eth0_tx(lab: Lab, host: str) -> tuple[int, int]:
    """(bytes, packets) the host has sent on its underlay interface."""
    r = subprocess.run(
        ["ip", "-n", lab.host(host).netns, "-s", "-j", "link", "show", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    )
    tx = json.loads(r.stdout)[0]["stats64"]["tx"]
    return int(tx["bytes"]), int(tx["packets"])


@dataclass
class Idle:
    """Per-node means over an idle window."""

    tx_bytes_s: float
    tx_pkts_s: float
    rss_mb: float  # the daemon (agent or nebula)
    cpu_pct: float  # % of one core, the daemon
    wg_rss_mb: Optional[float] = None  # wireguard-go, when there is one
    wg_cpu_pct: Optional[float] = None


def _mean(xs: list[float]) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def measure_idle(lab: Lab, daemons: dict[str, int], window: float = 10.0, helper: str = "") -> Idle:
    """Underlay tx counters of every host in `daemons` (host -> daemon pid) and CPU of the
    daemon (and of the `helper` process, e.g. wireguard-go) over `window` seconds."""
    hosts = list(daemons)
    helpers = {h: find_pid(lab, h, helper) for h in hosts} if helper else {}
    procs = list(daemons.values()) + [p for p in helpers.values() if p]

    def snapshot() -> tuple[dict[str, tuple[int, int]], dict[int, Optional[float]]]:
        return {h: eth0_tx(lab, h) for h in hosts}, {p: cpu_seconds(p) for p in procs}

    t0 = time.monotonic()
    tx0, cpu0 = snapshot()
    time.sleep(max(0.0, window - (time.monotonic() - t0)))
    tx1, cpu1 = snapshot()
    dt = time.monotonic() - t0

    def cpu_pct(pid: Optional[int]) -> list[float]:
        a, b = cpu0.get(pid or -1), cpu1.get(pid or -1)
        return [100 * (b - a) / dt] if a is not None and b is not None else []

    n = len(hosts)
    rss = [r / 1024 for p in daemons.values() if (r := rss_kb(p))]
    wg_rss = [r / 1024 for p in helpers.values() if p and (r := rss_kb(p))]
    return Idle(
        tx_bytes_s=sum(tx1[h][0] - tx0[h][0] for h in hosts) / dt / n,
        tx_pkts_s=sum(tx1[h][1] - tx0[h][1] for h in hosts) / dt / n,
        rss_mb=_mean(rss) or 0.0,
        cpu_pct=_mean([c for p in daemons.values() for c in cpu_pct(p)]) or 0.0,
        wg_rss_mb=_mean(wg_rss),
        wg_cpu_pct=_mean([c for p in helpers.values() for c in cpu_pct(p)]),
    )


def udp_socket(pid: int, port: int) -> Optional[tuple[int, int]]:
    """(bytes waiting, datagrams dropped) of the UDP socket bound to `port` in the network
    namespace of `pid` (/proc/PID/net/udp): the drops are what overflowed its receive buffer,
    counted for that one socket (/proc/net/snmp's RcvbufErrors are the namespace's)."""
    try:
        with open(f"/proc/{pid}/net/udp") as f:
            rows = [line.split() for line in f][1:]
    except OSError:
        return None
    for row in rows:  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        if int(row[1].split(":")[1], 16) == port:
            return int(row[4].split(":")[1], 16), int(row[12])
    return None
