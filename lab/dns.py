"""The lab's DNS server: dnsmasq on a host of its own on the internet, the resolver of every node.

The server is the node `-dns`: namespace `<prefix>--dns`, files under /run/<prefix>-lab/-dns,
switch port `pdns`. Like the switch `<prefix>--sw` it is a name no topology node can have, and
the lab's teardown (kill the processes in `<prefix>-*`, delete those namespaces, remove
/run/<prefix>-lab) removes it with the rest. dnsmasq answers only from its own hosts file
(`--no-resolv --no-hosts`, no config file) with TTL 0, so no resolver keeps an old address;
a changed record is written to that file and re-read on SIGHUP (checked with dnsmasq 2.90).

A node's resolver is a per-host resolv.conf that `Host.argv` bind-mounts over /etc/resolv.conf
(container mode: the container's own /etc/resolv.conf is rewritten), so it applies to the
programs started after `start`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING

from . import net
from .host import RESOLV_CONF, Host
from .testing import wait_until
from .topology import Link, Node

if TYPE_CHECKING:
    from .control import Lab

NAME = "-dns"
PORT = "pdns"  # its switch-side veth end (the topology's are p0, p1, …)
ADDRESS = "198.51.100.53/24"
HOSTS = "/run/dnsmasq.hosts"  # paths as the server sees them (its /run is a per-host directory)
PID_FILE = "/run/dnsmasq.pid"
ANSWER_TIMEOUT = 5.0  # seconds for the server to answer as told (start, SIGHUP)


def server(lab: Lab) -> Host:
    host = Host(lab, NAME)
    host.container = None  # a light-mode host even in container mode
    return host


def _state(lab: Lab) -> dict[str, object]:
    state: dict[str, object] = json.loads((lab.state_dir / "lab.json").read_text())
    return state


def start(lab: Lab, records: dict[str, str], address: str = ADDRESS) -> subprocess.Popen[str]:
    """Plug the server into the internet segment at `address`, serve `records` (name -> IPv4)
    and make it every node's resolver. Returns dnsmasq's process (the caller reaps it)."""
    if not shutil.which("dnsmasq"):
        raise RuntimeError("dnsmasq not found: apt-get install dnsmasq-base (scripts/apt-packages.txt)")
    if "dns" in _state(lab):
        raise RuntimeError(f"lab {lab.prefix}: the DNS server is already running")
    iface = ipaddress.IPv4Interface(address if "/" in address else f"{address}/24")
    ip = str(iface.ip)
    if ip in lab.addresses.values():
        raise ValueError(f"DNS server address {ip} is already used in the lab")
    segment = next((s for s, internet in lab.topology.segments.items() if internet), None)
    if segment is None:
        raise RuntimeError(f"{lab.topology.name}: no internet segment to put the DNS server on")
    records = {name: str(ipaddress.IPv4Address(a)) for name, a in records.items()}
    srv = server(lab)
    for sub in ("etc", "varlib", "run"):
        (srv.dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    net.plug(lab.topology, lab.prefix, Node(NAME, {"eth0": Link(segment, iface)}), PORT)
    lab.addresses[NAME] = ip
    lab._save({**_state(lab), "dns": records})  # for set_dns_record, also from Lab.attach
    _write_hosts(srv, records)
    for name in [NAME, *lab.topology.nodes]:
        (lab.state_dir / name / RESOLV_CONF).write_text(f"nameserver {ip}\n")
    if lab.containers:
        for name in lab.mesh_hosts:
            lab.host(name).run(["sh", "-c", "cat > /etc/resolv.conf"], input=f"nameserver {ip}\n")
    log_path = srv.dir / "dnsmasq.log"
    with open(log_path, "w") as log:
        proc = srv.popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",  # not the controller's /etc/dnsmasq.conf
                "--no-resolv",
                "--no-hosts",
                "--local=/#/",  # authoritative for every name: unknown ones are NXDOMAIN
                f"--addn-hosts={HOSTS}",
                "--local-ttl=0",
                f"--pid-file={PID_FILE}",
                "--user=root",  # the lab's files are root's
                "--log-facility=-",
                "--log-queries",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def started() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"dnsmasq exited with {proc.returncode}: {log_path.read_text().strip()}")
        return srv.path(PID_FILE).exists()

    wait_until(started, ANSWER_TIMEOUT, "dnsmasq to start")
    _wait_answers(srv, dict(records))
    return proc


def set_record(lab: Lab, name: str, address: str | None) -> None:
    """Point `name` at `address` (None: remove it); returns once the server answers so."""
    state = _state(lab)
    records = state.get("dns")
    if not isinstance(records, dict):
        raise RuntimeError(f"lab {lab.prefix}: no DNS server (call start_dns first)")
    if address is None:
        records.pop(name, None)
    else:
        records[name] = str(ipaddress.IPv4Address(address))
    lab._save({**state, "dns": records})
    srv = server(lab)
    _write_hosts(srv, records)
    os.kill(int(srv.path(PID_FILE).read_text()), signal.SIGHUP)
    _wait_answers(srv, {name: records.get(name)})


def _write_hosts(srv: Host, records: dict[str, str]) -> None:
    path = srv.path(HOSTS)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("".join(f"{a} {n}\n" for n, a in sorted(records.items())))
    tmp.replace(path)  # dnsmasq never reads half a file


def _answer(srv: Host, name: str) -> str | None:
    """The server's answer for `name`, asked through the server's own resolver."""
    res = srv.run(["getent", "ahostsv4", name], check=False, timeout=ANSWER_TIMEOUT)
    return res.stdout.split()[0] if res.returncode == 0 and res.stdout else None


def _wait_answers(srv: Host, expect: dict[str, str | None]) -> None:
    """Wait until the server answers each name with its address (None: no such name)."""
    for name, address in expect.items():
        wait_until(
            functools.partial(_answers, srv, name, address),
            ANSWER_TIMEOUT,
            f"the DNS server to answer {name} with {address or 'no address'}",
        )


def _answers(srv: Host, name: str, address: str | None) -> bool:
    return _answer(srv, name) == address
