"""Topology files: segments (L2 bridges), routers and hosts, loaded from YAML or generated.

A topology file looks like::

    segments:
      internet: {internet: true}     # flat public network: everything on it reachable by ARP
      home: {}                       # a LAN; its default gateway is the router whose lan is on it
    routers:
      home-gw:
        wan: {segment: internet, address: 203.0.113.1/24}
        lan: {segment: home, address: 192.168.1.1/24}
        nat: cone                    # cone (keeps source ports) | symmetric (new port per destination)
    hosts:
      charlie:
        segment: home
        address: 192.168.1.3/24
        firewall: false              # true: drop unsolicited inbound on the host's own input/forward hooks
        vars: {wg_ip: 10.1.1.3}      # free-form, copied into the generated Ansible inventory
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOPOLOGY_DIR = Path(__file__).resolve().parent / "topologies"
_SCALE = re.compile(r"^scale-(\d+)$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


class TopologyError(ValueError):
    """A topology file that cannot be built; the message names the file and the field."""


@dataclass(frozen=True)
class Link:
    """One interface of a node on a segment."""

    segment: str
    address: ipaddress.IPv4Interface


@dataclass(frozen=True)
class Node:
    """A namespace: a host (one link, `eth0`) or a router (links `wan` and `lan`)."""

    name: str
    links: dict[str, Link]  # interface name -> link
    router: bool = False
    nat: str = "cone"
    firewall: bool = False
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> Link:
        return self.links["wan" if self.router else "eth0"]


@dataclass(frozen=True)
class Topology:
    name: str
    segments: dict[str, bool]  # segment name -> is the internet
    nodes: dict[str, Node]

    @property
    def hosts(self) -> list[str]:
        return [n for n, node in self.nodes.items() if not node.router]

    def gateway(self, segment: str) -> ipaddress.IPv4Address | None:
        """The default gateway on a LAN segment (None on the internet: routes are on-link)."""
        if self.segments[segment]:
            return None
        for node in self.nodes.values():
            lan = node.links.get("lan")
            if node.router and lan is not None and lan.segment == segment:
                return lan.address.ip
        raise TopologyError(f"{self.name}: segments.{segment}: no router has its lan here")


def load(spec: str | Path) -> Topology:
    """Load `spec`: a path, a shipped topology name (lab/topologies/NAME.yaml) or `scale-N`."""
    text = str(spec)
    match = _SCALE.match(text)
    if match:
        return parse(f"scale-{match.group(1)}", scale(int(match.group(1))))
    path = Path(spec)
    if not path.suffix:
        path = TOPOLOGY_DIR / f"{text}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(path.stem, data)


def parse(name: str, data: Any) -> Topology:
    def fail(where: str, reason: str) -> TopologyError:
        return TopologyError(f"{name}: {where}: {reason}")

    if not isinstance(data, dict):
        raise fail("(top)", "expected a mapping")
    segments = {str(s): bool((v or {}).get("internet")) for s, v in (data.get("segments") or {}).items()}
    nodes: dict[str, Node] = {}

    def link(where: str, raw: Any) -> Link:
        if not isinstance(raw, dict) or raw.get("segment") not in segments:
            raise fail(f"{where}.segment", f"must be one of {sorted(segments)}")
        try:
            address = ipaddress.IPv4Interface(str(raw.get("address")))
        except ValueError:
            raise fail(
                f"{where}.address",
                "expected an IPv4 address with prefix, e.g. 10.0.0.1/24",
            ) from None
        return Link(str(raw["segment"]), address)

    for rname, raw in (data.get("routers") or {}).items():
        where = f"routers.{rname}"
        nat = str((raw or {}).get("nat", "cone"))
        if nat not in ("cone", "symmetric"):
            raise fail(f"{where}.nat", "must be cone or symmetric")
        nodes[str(rname)] = Node(
            str(rname),
            {
                "wan": link(f"{where}.wan", raw.get("wan")),
                "lan": link(f"{where}.lan", raw.get("lan")),
            },
            router=True,
            nat=nat,
        )
    for hname, raw in (data.get("hosts") or {}).items():
        where = f"hosts.{hname}"
        if str(hname) in nodes:
            raise fail(where, "name already used by a router")
        vars_ = (raw or {}).get("vars") or {}
        if not isinstance(vars_, dict):
            raise fail(f"{where}.vars", "expected a mapping")
        nodes[str(hname)] = Node(
            str(hname),
            {"eth0": link(where, raw)},
            firewall=bool(raw.get("firewall")),
            vars=dict(vars_),
        )
    for nname in nodes:
        if not _NAME.match(nname):
            raise fail(
                nname,
                "names are lower-case letters, digits and '-', at most 20 characters",
            )
    topo = Topology(name, segments, nodes)
    for node in nodes.values():  # every LAN must have a gateway: fail at load time, not half-built
        for lname, lk in node.links.items():
            if lname != "lan":
                topo.gateway(lk.segment)
    return topo


def scale(n: int, routers: int = 4) -> dict[str, Any]:
    """A topology of `n` mesh hosts h001..: every fifth one (h001, h006, …) public, the rest
    spread round-robin over `routers` cone-NAT home routers. wg_ip 10.1.x.y from the index."""
    if not 1 <= n <= 250:
        raise TopologyError(f"scale-{n}: n must be between 1 and 250")
    data: dict[str, Any] = {
        "segments": {"internet": {"internet": True}},
        "routers": {},
        "hosts": {},
    }
    for r in range(1, routers + 1):
        data["segments"][f"lan{r}"] = {}
        data["routers"][f"r{r}"] = {
            "wan": {"segment": "internet", "address": f"203.0.113.{r}/24"},
            "lan": {"segment": f"lan{r}", "address": f"192.168.{10 + r}.1/24"},
            "nat": "cone",
        }
    private = 0
    for i in range(1, n + 1):
        name = f"h{i:03d}"
        vars_: dict[str, Any] = {"wg_ip": f"10.1.{i // 256}.{i % 256}"}
        if i % 5 == 1:
            address = f"198.51.100.{i + 1}"  # .1 is left free, like the seeds' alpha
            vars_["wg_static_endpoint"] = f"{address}:50000"
            data["hosts"][name] = {
                "segment": "internet",
                "address": f"{address}/24",
                "vars": vars_,
            }
        else:
            r = private % routers + 1
            host_part = private // routers + 10
            private += 1
            data["hosts"][name] = {
                "segment": f"lan{r}",
                "address": f"192.168.{10 + r}.{host_part}/24",
                "vars": vars_,
            }
    return data
