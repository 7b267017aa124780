"""Nebula on lab hosts, the reference the agent is compared with: a CA, one certificate per
host (10.2.x.y/16, the last two octets of the host's wg_ip: 10.1.1.3 -> 10.2.1.3, scale-N's
10.1.0.42 -> 10.2.0.42), a lighthouse on a public host, punchy on, and one `nebula` process
per host started with `lab.host(h).popen`."""

from __future__ import annotations

import ipaddress
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

import yaml

from lab import Lab

PORT = 4242
NETWORK = ipaddress.IPv4Network("10.2.0.0/16")
ALLOW_ALL = [{"port": "any", "proto": "any", "host": "any"}]


def version() -> str:
    r = subprocess.run(["nebula", "-version"], capture_output=True, text=True, check=False)
    return r.stdout.replace("Version:", "").strip() or "?"


def nebula_ip(wg_ip: str) -> str:
    """The host's Nebula address: its wg_ip moved into 10.2.0.0/16 (the agent has 10.1.0.0/16)."""
    return str(NETWORK.network_address + (int(ipaddress.IPv4Address(wg_ip)) & 0xFFFF))


def public_hosts(lab: Lab) -> list[str]:
    """Mesh hosts with a static public endpoint (`wg_static_endpoint` in their vars): the ones
    a lighthouse can run on, since every other node must reach it unsolicited."""
    return [h for h in lab.mesh_hosts if lab.topology.nodes[h].vars.get("wg_static_endpoint")]


class NebulaMesh:
    """`with NebulaMesh(lab, lighthouse="beta") as neb: neb.start_all()` — killed on exit."""

    def __init__(self, lab: Lab, lighthouse: str, hosts: Optional[list[str]] = None) -> None:
        self.lab = lab
        self.hosts = hosts or lab.mesh_hosts
        self.lighthouse = lighthouse
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.ips = {h: nebula_ip(str(lab.topology.nodes[h].vars["wg_ip"])) for h in self.hosts}
        if len(set(self.ips.values())) != len(self.hosts):
            raise ValueError(f"{lab.topology.name}: two hosts would get the same Nebula address")
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nebula-")  # 0700: holds the CA key

    def __enter__(self) -> NebulaMesh:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _dir(self, host: str) -> Path:
        # The host's own /etc/wg_netmanager tree (0700 dir, files 0600): nothing else reads it.
        d = self.lab.host(host).path("/etc/wg_netmanager/nebula")
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    def _certs(self) -> None:
        ca = Path(self._tmp.name)
        cert = ["nebula-cert"]
        subprocess.run(
            [*cert, "ca", "-name", "bench", "-out-crt", ca / "ca.crt", "-out-key", ca / "ca.key"],
            check=True,
            capture_output=True,
        )
        for h in self.hosts:
            d = self._dir(h)
            for f in ("host.crt", "host.key"):
                (d / f).unlink(missing_ok=True)
            subprocess.run(
                [
                    *cert,
                    "sign",
                    "-ca-crt",
                    ca / "ca.crt",
                    "-ca-key",
                    ca / "ca.key",
                    "-name",
                    h,
                    "-ip",
                    f"{self.ips[h]}/{NETWORK.prefixlen}",
                    "-out-crt",
                    d / "host.crt",
                    "-out-key",
                    d / "host.key",
                ],
                check=True,
                capture_output=True,
            )
            (d / "host.key").chmod(0o600)
            (d / "ca.crt").write_bytes((ca / "ca.crt").read_bytes())

    def config(self, host: str, index: int) -> dict[str, Any]:
        d = "/etc/wg_netmanager/nebula"
        lh = host == self.lighthouse
        return {
            "pki": {"ca": f"{d}/ca.crt", "cert": f"{d}/host.crt", "key": f"{d}/host.key"},
            "static_host_map": {
                self.ips[self.lighthouse]: [f"{self.lab.host(self.lighthouse).address}:{PORT}"]
            },
            "lighthouse": {
                "am_lighthouse": lh,
                "interval": 60,
                "hosts": [] if lh else [self.ips[self.lighthouse]],
            },
            "listen": {"host": "0.0.0.0", "port": PORT},
            "punchy": {"punch": True, "respond": True},
            "tun": {"dev": f"nebula{index}", "mtu": 1300},
            "logging": {"level": "info", "format": "text"},
            "firewall": {"outbound": ALLOW_ALL, "inbound": ALLOW_ALL},
        }

    def write_configs(self) -> None:
        self._certs()
        for i, h in enumerate(self.hosts):
            path = self._dir(h) / "config.yml"
            path.write_text(yaml.safe_dump(self.config(h, i)))
            path.chmod(0o600)

    def start_all(self, log_dir: Path) -> None:
        """Write the configs, then spawn every node back to back (the clock starts after)."""
        self.write_configs()
        log_dir.mkdir(parents=True, exist_ok=True)
        for h in self.hosts:
            with open(log_dir / f"nebula-{h}.log", "w") as log:
                self.procs[h] = self.lab.host(h).popen(
                    ["nebula", "-config", "/etc/wg_netmanager/nebula/config.yml"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def close(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()
        self._tmp.cleanup()
