# Copyright (c) 2026 wg_netmanager contributors
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT
"""Who holds the WireGuard interface and the UDP ports the agent is about to take.

Read-only. Rules, checked before the agent role writes anything on a node:

1. The interface is ours if it does not exist, or the agent's ownership marker names it
   (`<state dir>/<interface>.created.json`, written by the agent's backends before they create
   the interface; agent/src/wg_netmanager/backends/marker.py), in the state directory or in
   the one an older deployment used (the role moves the marker from there later). With
   `existing_interface` the agent adopts somebody else's interface, so it must exist instead.
   An interface that is not ours is reported with the userspace daemon that runs it, if any.
2. A UDP port is ours if nothing has it bound, or the process holding it is our agent (its
   command line runs the program in our virtualenv), or it is the WireGuard port of our own
   interface held by its userspace daemon (`wireguard-go wg0`) or by the kernel (kernel
   WireGuard's socket belongs to no process).
3. Ports the agent derives (wg_port 0: from the node's name; admin port 0: WireGuard port
   + 1) are computed as the agent does (core/config.py `dynamic_port`, `default_admin_port`).

Sockets are found in /proc/net/udp{,6} and their processes through /proc/PID/fd; without
/proc (BSD, macOS) the ports are not checked and the result says so.
"""

from __future__ import annotations

import json
import os
import socket
import zlib
from typing import Any, Dict, List, Optional

DEFAULT_STATE_DIR = "/var/lib/wg_netmanager"
DEFAULT_WG_PORT = 50000
USERSPACE_DAEMONS = ("wireguard-go", "boringtun", "boringtun-cli")
_UDP_TABLES = ("net/udp", "net/udp6")


def dynamic_port(name: str) -> int:
    """The agent's WireGuard port for a node without one (core/config.py dynamic_port)."""
    return DEFAULT_WG_PORT + 2 * (zlib.crc32(name.encode()) % 5000)


def default_admin_port(wg_port: int) -> int:
    """The agent's control port when none is given (core/config.py default_admin_port)."""
    return wg_port + 1 if wg_port < 65535 else wg_port - 1


def agent_ports(name: str, wg_port: int, admin_port: int) -> Dict[str, int]:
    """The ports the agent will bind, 0 meaning "the agent's default" as in peer.yaml."""
    wg = wg_port or dynamic_port(name)
    return {"wg_port": wg, "admin_port": admin_port or default_admin_port(wg)}


def interface_exists(ifname: str) -> bool:
    """In this process's network namespace, like the agent's own check."""
    try:
        socket.if_nametoindex(ifname)
    except OSError:
        return False
    return True


def marker_names(state_dir: str, ifname: str) -> bool:
    """Whether the agent's ownership marker for `ifname` is there (any backend)."""
    try:
        with open(os.path.join(state_dir, ifname + ".created.json")) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("ifname") == ifname


def interface_daemons(ifname: str, proc: str = "/proc") -> Dict[int, List[str]]:
    """PID -> command line of the userspace WireGuard daemons (wireguard-go, boringtun) for `ifname`."""
    found: Dict[int, List[str]] = {}
    try:
        pids = [int(entry) for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return found
    for pid in sorted(pids):
        cmdline = read_cmdline(pid, proc)
        if is_our_daemon(cmdline, ifname):
            found[pid] = cmdline
    return found


def udp_socket_inodes(port: int, proc: str = "/proc") -> Optional[List[int]]:
    """Inodes of the UDP sockets bound to `port` (0: a kernel socket), or None without /proc."""
    found: List[int] = []
    seen_table = False
    for table in _UDP_TABLES:
        try:
            with open(os.path.join(proc, table)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        seen_table = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or ":" not in fields[1]:
                continue
            try:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                inode = int(fields[9])
            except ValueError:
                continue
            if local_port == port:
                found.append(inode)
    return found if seen_table else None


def socket_owners(inodes: List[int], proc: str = "/proc") -> Dict[int, List[str]]:
    """PID -> command line of every process with one of these socket inodes open."""
    wanted = {f"socket:[{inode}]" for inode in inodes if inode}
    owners: Dict[int, List[str]] = {}
    if not wanted:
        return owners
    try:
        pids = [int(entry) for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return owners
    for pid in sorted(pids):
        fd_dir = os.path.join(proc, str(pid), "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target in wanted:
                owners[pid] = read_cmdline(pid, proc)
                break
    return owners


def read_cmdline(pid: int, proc: str = "/proc") -> List[str]:
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def is_our_agent(cmdline: List[str], venv: str) -> bool:
    """The agent runs as `VENV/bin/python VENV/bin/wg_netmanager ...` (or the script alone)."""
    prefix = venv.rstrip("/") + "/bin/"
    return any(arg.startswith(prefix) for arg in cmdline[:2])


def is_our_daemon(cmdline: List[str], ifname: str) -> bool:
    """A userspace WireGuard daemon for `ifname` (the one the agent started, on our interface)."""
    return len(cmdline) >= 2 and os.path.basename(cmdline[0]) in USERSPACE_DAEMONS and cmdline[-1] == ifname


def describe(pid: int, cmdline: List[str]) -> str:
    return f"PID {pid} ({' '.join(cmdline) or '?'})"


def check_node(
    interface: str,
    existing_interface: bool,
    ports: Dict[str, int],
    venv: str,
    state_dir: str = DEFAULT_STATE_DIR,
    proc: str = "/proc",
    exists: Any = interface_exists,
    legacy_state_dir: Optional[str] = None,
) -> Dict[str, Any]:
    """Everything that stands in the agent's way, as one result (`conflicts` empty: none)."""
    conflicts: List[str] = []
    present = bool(exists(interface))
    marker_dirs = [state_dir] + ([legacy_state_dir] if legacy_state_dir else [])
    marked = any(marker_names(d, interface) for d in marker_dirs)
    if existing_interface:
        ours = present
        if not present:
            conflicts.append(
                f"wg_existing_interface is true but interface {interface} does not exist: create it "
                "first, or set wg_existing_interface to false and let the agent create it"
            )
    else:
        ours = not present or marked
        if not ours:
            marker = os.path.join(state_dir, interface + ".created.json")
            daemons = [describe(pid, cmd) for pid, cmd in interface_daemons(interface, proc).items()]
            run_by = f", run by {', '.join(daemons)}," if daemons else ""
            conflicts.append(
                f"interface {interface} already exists{run_by} and was not created by wg_netmanager "
                f"(no {marker}): delete it, choose another wg_interface, or adopt it with "
                "wg_existing_interface: true"
            )
    result: Dict[str, Any] = {
        "interface": {"name": interface, "exists": present, "ours": ours, "marker": marked},
        "ports": [],
        "ports_checked": True,
        "conflicts": conflicts,
    }
    for var, port in sorted(ports.items()):
        inodes = udp_socket_inodes(port, proc)
        if inodes is None:
            result["ports_checked"] = False
            continue
        owners = socket_owners(inodes, proc)
        kernel = 0 in inodes
        own_wg_port = var == "wg_port" and present and ours
        foreign = [
            describe(pid, cmd)
            for pid, cmd in sorted(owners.items())
            if not is_our_agent(cmd, venv) and not (own_wg_port and is_our_daemon(cmd, interface))
        ]
        where = f"UDP port {port} ({var})"
        problem = None
        if foreign:
            problem = f"{where} is in use by {', '.join(foreign)}: stop it or choose another {var}"
        elif kernel and not own_wg_port:
            problem = (
                f"{where} is held by the kernel (another WireGuard interface? see `wg show all "
                f"listen-port`): choose another {var}"
            )
        elif inodes and not owners and not kernel:
            # Sockets whose process we could not see (another PID namespace, no permission).
            problem = f"{where} is in use by a process this check cannot see: stop it or choose another {var}"
        if problem:
            conflicts.append(problem)
        result["ports"].append(
            {
                "var": var,
                "port": port,
                "in_use": bool(inodes),
                "ours": problem is None,
                "kernel": kernel,
                "holders": [{"pid": pid, "command": cmd} for pid, cmd in sorted(owners.items())],
            }
        )
    return result
