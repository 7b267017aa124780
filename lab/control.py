"""The Lab: bring a topology up, reach its hosts, change the network under them, tear it down.

Everything a lab makes carries its prefix: namespaces `<prefix>-*`, containers labelled
`wgnm.lab=<prefix>`, per-host files under /run/<prefix>-lab/, the inventory under
.lab/<prefix>/. Teardown finds things by that prefix, so it also cleans up after a crash.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from . import containers as ctr
from . import dns, net
from .host import MOUNTS, Host
from .topology import Topology, TopologyError, load

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,9}$")


@contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while tearing down, so Ctrl-C cannot leave half a lab behind; a
    signal that arrives meanwhile is delivered (KeyboardInterrupt) right after."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def state_dir(prefix: str) -> Path:
    return Path(f"/run/{prefix}-lab")


def lab_dir(prefix: str) -> Path:
    """Where the generated Ansible inventory goes (gitignored)."""
    return REPO / ".lab" / prefix


class Lab:
    """A running topology. Use `Lab.up(...)` (a context manager) or `Lab.attach(prefix)`."""

    def __init__(self, topology: Topology, prefix: str = "wgnm", containers: bool = False) -> None:
        if not _PREFIX.match(prefix):
            raise TopologyError(f"prefix {prefix!r}: 1-10 lower-case letters/digits, starting with a letter")
        self.topology = topology
        self.prefix = prefix
        self.containers = containers
        self.state_dir = state_dir(prefix)
        self.containers_conf = ctr.CONTAINERS_CONF
        self.addresses = {n: str(node.main.address.ip) for n, node in topology.nodes.items()}
        self.timings: dict[str, float] = {}
        self._dnsmasq: subprocess.Popen[str] | None = None

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def up(
        cls,
        topology: str | Path | Topology,
        prefix: str = "wgnm",
        containers: bool = False,
    ) -> Lab:
        """Build `topology` (a shipped name, `scale-N`, a path, or a Topology), first removing
        any leftover lab with the same prefix."""
        topo = topology if isinstance(topology, Topology) else load(topology)
        lab = cls(topo, prefix, containers)
        if containers and not ctr.image_exists():
            raise RuntimeError(f"container image {ctr.IMAGE} missing: run lab/setup-image")
        cls.teardown(prefix)
        try:
            lab._build(str(topology) if not isinstance(topology, Topology) else topo.name)
        except BaseException:
            lab.down()
            raise
        return lab

    def _build(self, spec: str) -> None:
        t0 = time.monotonic()
        for mountpoint in MOUNTS.values():  # light mode bind-mounts over these
            Path(mountpoint).mkdir(parents=True, exist_ok=True)
        for name in self.topology.nodes:
            for sub in ("etc", "varlib", "run/wg_netmanager", "run/wireguard"):
                (self.state_dir / name / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        spec_path = Path(spec)
        self._save(
            {
                "topology": str(spec_path.resolve()) if spec_path.suffix else spec,
                "containers": self.containers,
            }
        )
        net.build(self.topology, self.prefix)
        self.timings["network_s"] = time.monotonic() - t0
        if self.containers:
            # /proc/sys is read-only in a container: a static node's agent cannot turn on
            # forwarding for its interface, which inherits the namespace's default instead
            # (what an operator does with `podman run --sysctl`).
            for n in self.mesh_hosts:
                if self.topology.nodes[n].vars.get("wg_static_endpoint"):
                    net.in_ns(f"{self.prefix}-{n}", ["sysctl", "-qw", "net.ipv4.conf.default.forwarding=1"])
            # podman run is mostly waiting (runc, conmon): a few in parallel roughly halve it.
            with ThreadPoolExecutor(max_workers=8) as pool:
                starts = [pool.submit(ctr.start, self.prefix, n, self.state_dir / n) for n in self.mesh_hosts]
                for fut in starts:
                    fut.result()
            ctr.write_inventory(self.topology, self.prefix, lab_dir(self.prefix))
        self.timings["up_s"] = time.monotonic() - t0
        log.info(
            "lab %s (%s) up in %.2f s",
            self.prefix,
            self.topology.name,
            self.timings["up_s"],
        )

    def _save(self, state: dict[str, object]) -> None:
        (self.state_dir / "lab.json").write_text(json.dumps({**state, "addresses": self.addresses}))

    @classmethod
    def attach(cls, prefix: str = "wgnm") -> Lab:
        """The running lab `prefix` (as left by `python -m lab up`)."""
        try:
            state = json.loads((state_dir(prefix) / "lab.json").read_text())
        except FileNotFoundError:
            raise RuntimeError(f"no lab with prefix {prefix!r} is up") from None
        lab = cls(load(state["topology"]), prefix, bool(state["containers"]))
        lab.addresses.update(state["addresses"])
        return lab

    @staticmethod
    def teardown(prefix: str) -> None:
        """Remove everything carrying `prefix`: containers, processes, namespaces (with their
        veths and bridges), per-host directories and the inventory. Safe to repeat."""
        with _no_interrupt():
            if shutil.which("podman"):
                ctr.remove(prefix)
            net.remove(prefix)
            # Light-mode bind mounts live in the (now dead) processes' own mount namespaces,
            # so nothing is mounted under these directories any more.
            shutil.rmtree(state_dir(prefix), ignore_errors=True)
            shutil.rmtree(lab_dir(prefix), ignore_errors=True)

    def down(self) -> None:
        t0 = time.monotonic()
        self.teardown(self.prefix)
        if self._dnsmasq is not None:  # killed by the teardown: reap it
            self._dnsmasq.wait()
            self._dnsmasq = None
        self.timings["down_s"] = time.monotonic() - t0

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # -- hosts ------------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        if name not in self.topology.nodes:
            raise KeyError(f"{self.topology.name}: no host {name!r}")
        return Host(self, name)

    @property
    def mesh_hosts(self) -> list[str]:
        """Names of the non-router hosts, in topology order."""
        return self.topology.hosts

    @property
    def inventory(self) -> Path:
        return lab_dir(self.prefix) / "inventory.yml"

    # -- changing the network ---------------------------------------------------------------
    def set_address(self, name: str, address: str) -> None:
        """Roaming: give host `name` a new address on its LAN (prefix kept unless given) and
        restore its default route, which the kernel drops with the old address."""
        node = self.topology.nodes[name]
        old = node.main.address
        new = ipaddress.IPv4Interface(address if "/" in address else f"{address}/{old.network.prefixlen}")
        ifname = "wan" if node.router else "eth0"
        net.ip_batch(
            net.node_ns(self.prefix, name),
            [
                f"addr flush dev {ifname}",
                f"addr add {new} dev {ifname}",
                net.default_route(self.topology, node, ifname),
            ],
        )
        self.addresses[name] = str(new.ip)
        self._save({**json.loads((self.state_dir / "lab.json").read_text())})

    def start_dns(self, records: dict[str, str] | None = None, address: str = dns.ADDRESS) -> str:
        """Run a DNS server (dnsmasq) on the internet at `address`, serving `records` (name ->
        IPv4, TTL 0), and make it the resolver of every node: of the programs started from now
        on (light mode), or of the containers. Returns the server's IPv4 address."""
        self._dnsmasq = dns.start(self, records or {}, address)
        return self.addresses[dns.NAME]

    def set_dns_record(self, name: str, address: str | None) -> None:
        """Point `name` at `address` (None: remove it); returns once the DNS server answers so."""
        dns.set_record(self, name, address)

    def _set_ports(self, name: str, state: str) -> None:
        ports = [p for (node, _), p in net.ports(self.topology).items() if node == name]
        if not ports:
            raise KeyError(f"{self.topology.name}: no host {name!r}")
        net.ip_batch(net.switch_ns(self.prefix), [f"link set {p} {state}" for p in ports])

    def isolate_host(self, name: str) -> None:
        """Unplug the host's cable (its switch port goes down): it keeps its addresses and
        processes but nothing gets in or out, like a machine that disappeared."""
        self._set_ports(name, "down")

    def reconnect_host(self, name: str) -> None:
        self._set_ports(name, "up")

    def stop_host(self, name: str) -> None:
        """Kill every process on the host (its container too) and unplug it."""
        self.isolate_host(name)
        net.kill_all([net.node_ns(self.prefix, name)])
