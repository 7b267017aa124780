"""Leaves: WireGuard peers that run no agent (a phone, a tablet, a router with wg-quick).

net.yaml lists each with its public key, its address in the mesh and its home, a static node:
the home holds the leaf as a WireGuard peer (no endpoint: the leaf connects, and roams as it
likes; WireGuard learns where it is), and every other node routes the leaf's address to the
home, whichever path reaches the home. A leaf's address and key are the leaf's alone: a node
claiming either is refused by the static nodes (hub.py) and left out of every view.

Pure: parsing net.yaml's `leaves` (`parse_leaves`) and what follows for one node.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from . import checks
from .checks import ConfigError
from .messages import NodeInfo
from .model import PeerSpec, PeerStats

MAX_LEAVES = 1024
HANDSHAKE_FRESH = 180.0  # seconds: WireGuard rejects a session older than this (REJECT_AFTER_TIME)


@dataclass(frozen=True)
class Leaf:
    name: str
    wg_ip: IPv4Address
    public_key: str  # base64
    home: str  # the name of the static node that holds it

    @property
    def network(self) -> IPv4Network:
        return IPv4Network((int(self.wg_ip), 32))


def parse_leaves(
    raw: Any, source: str, subnet: IPv4Network, statics: Mapping[str, IPv4Address], pinned: Sequence[bytes]
) -> tuple[Leaf, ...]:
    """net.yaml's `leaves` (name -> publicKey, wgIp, home); `statics` the named static nodes'
    addresses, `pinned` their pinned keys."""
    if raw is None:
        return ()
    top = checks.typed(raw, dict, "a mapping of leaf name to publicKey, wgIp, home", source, "leaves")
    if len(top) > MAX_LEAVES:
        raise ConfigError(source, "leaves", f"{len(top)} leaves, at most {MAX_LEAVES}")
    leaves: list[Leaf] = []
    for name, spec in top.items():
        fld = f"leaves.{name}"
        checks.name(name, source, fld)
        if name in statics:
            raise ConfigError(source, fld, f"{name} is also a static node's name")
        spec = checks.mapping(spec, source, fld, ("publicKey", "wgIp", "home"), ("publicKey", "wgIp", "home"))
        key = checks.public_key(spec["publicKey"], source, f"{fld}.publicKey")
        ip = checks.ipv4(spec["wgIp"], source, f"{fld}.wgIp")
        checks.check_in_subnet(ip, subnet, source, f"{fld}.wgIp", source)
        home = checks.name(spec["home"], source, f"{fld}.home")
        if home not in statics:
            known = ", ".join(sorted(statics)) or "none"
            raise ConfigError(source, f"{fld}.home", f"{home} is not a static node of {source} ({known})")
        for other in leaves:
            if other.wg_ip == ip:
                raise ConfigError(source, f"{fld}.wgIp", f"{ip} is already leaf {other.name}'s")
            if other.public_key == base64.b64encode(key).decode():
                raise ConfigError(source, f"{fld}.publicKey", f"the same key as leaf {other.name}")
        taken = next((n for n, a in statics.items() if a == ip), None)
        if taken is not None:
            raise ConfigError(source, f"{fld}.wgIp", f"{ip} is static node {taken}'s")
        if key in pinned:
            raise ConfigError(source, f"{fld}.publicKey", "the key of a static node")
        leaves.append(Leaf(name, ip, base64.b64encode(key).decode(), home))
    return tuple(leaves)


def without_leaves(view: dict[str, NodeInfo], leaves: Sequence[Leaf]) -> dict[str, NodeInfo]:
    """The view with any node that claims a leaf's address or key left out."""
    if not leaves:
        return view
    ips = {leaf.wg_ip for leaf in leaves}
    keys = {leaf.public_key for leaf in leaves}
    return {k: v for k, v in view.items() if k not in keys and v.wg_ip not in ips}


def own_peers(leaves: Sequence[Leaf], me: str) -> tuple[PeerSpec, ...]:
    """The WireGuard peers of the leaves whose home is node `me`."""
    return tuple(PeerSpec(leaf.public_key, None, (leaf.network,)) for leaf in leaves if leaf.home == me)


def routes(leaves: Sequence[Leaf], me: str, home_keys: Mapping[str, str]) -> dict[IPv4Network, str]:
    """Every other leaf's address -> the public key of its home (`home_keys`: static nodes'
    keys by name, of those that answered), where the leaf's packets go."""
    return {
        leaf.network: home_keys[leaf.home] for leaf in leaves if leaf.home != me and leaf.home in home_keys
    }


def status(
    leaves: Sequence[Leaf],
    me: str,
    peers: Sequence[Mapping[str, Any]],
    stats: Mapping[str, PeerStats],
    wall: float,
) -> list[dict[str, Any]]:
    """`leaves` of the status document: at its home a leaf is reached as a node behind NAT is
    (path `nat` while its WireGuard session is fresh, else `none`); elsewhere through its home
    (`gateway`, or `none` while the home is not reached). `peers`: the document's peers (the
    path to each static node), `stats`: WireGuard's, `wall`: unix time."""
    reached = {str(p["name"]) for p in peers if p.get("path") != "none"}
    out = []
    for leaf in leaves:
        st = stats.get(leaf.public_key)
        if leaf.home == me:
            fresh = st is not None and wall - st.last_handshake < HANDSHAKE_FRESH
            path, gateway = ("nat" if fresh else "none"), None
        else:
            path, gateway = ("gateway", leaf.home) if leaf.home in reached else ("none", None)
        entry: dict[str, Any] = {"name": leaf.name, "wgIp": str(leaf.wg_ip), "home": leaf.home, "path": path}
        entry["gateway"] = gateway
        if st is not None:
            entry["endpoint"] = str(st.endpoint) if st.endpoint else None
            entry["lastHandshake"] = st.last_handshake
        out.append(entry)
    return out
