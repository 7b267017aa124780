"""net.yaml, the same file on every node: the network (shared key, subnet, CA) and its
static nodes, parsed from data already loaded from YAML (`parse_net`), plus the static nodes
given on the command line (`add_static_peers`). Every mistake raises one `ConfigError`
naming the file, the field as a dotted path, and what is wrong.

net.yaml lists its static nodes in one of two forms. The mapping form names them
(`peers: {beta: {endPoint, adminPort, wgIp}}`). The list form is the original Rust
wg_netmanager's (`peers: [{endPoint, adminPort, wgIp}]`, `name` optional): an entry without
a name is identified by its wgIp (the node started with that `-a` is that static node) and
is known as `static-A-B-C-D` until it answers with the name it runs under.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from . import checks
from .checks import ConfigError
from .leaves import Leaf, parse_leaves

COMMAND_LINE = "command line"
STATIC_PEER_OPTION = "--static-peer"
_PEER_KEYS = ("name", "endPoint", "adminPort", "wgIp", "publicKey")


@dataclass(frozen=True)
class StaticPeer:
    """A public node listed in net.yaml; its endpoint host may be a DNS name."""

    name: str
    endpoint_host: str
    endpoint_port: int
    admin_port: int
    wg_ip: IPv4Address
    named: bool = True  # False: a list entry without a name; `name` is made from the wgIp
    public_key: bytes | None = None  # pinned: only this WireGuard key may answer for it

    @property
    def endpoint(self) -> str:
        return f"{self.endpoint_host}:{self.endpoint_port}"


@dataclass(frozen=True)
class NetConfig:
    # Never shown: a repr may end up in a log line.
    shared_key: bytes = field(repr=False)
    subnet: IPv4Network
    peers: tuple[StaticPeer, ...]
    source: str
    # "FILE: FIELD: REASON" lines for what was accepted but deserves a look.
    warnings: tuple[str, ...] = ()
    ca_public_key: bytes | None = None  # the network CA (strong mode), if any
    # During a rotation: the shared key being replaced, still accepted (and spoken to nodes
    # that know only it).
    previous_key: bytes | None = field(default=None, repr=False)
    revoked: frozenset[int] = frozenset()  # certificate serials no node may use
    # The networks within which announced subnets are routed (subnets.py); None: the
    # private-use ones (subnets.PRIVATE).
    routed_subnets: tuple[IPv4Network, ...] | None = None
    leaves: tuple[Leaf, ...] = ()  # agent-less WireGuard peers (leaves.py)

    def mode(self) -> str:
        """What protects membership, in words (check-config prints it)."""
        if self.ca_public_key is not None:
            ca = base64.b64encode(self.ca_public_key).decode()
            rotating = "; rotating the shared key" if self.previous_key else ""
            return f"network CA {ca}, {len(self.revoked)} revoked{rotating}"
        pinned = sum(p.public_key is not None for p in self.peers)
        rotating = "; rotating (previousSharedKey accepted)" if self.previous_key else ""
        return f"shared key; {pinned} of {len(self.peers)} static node keys pinned{rotating}"

    def peer_named(self, name: str) -> StaticPeer | None:
        return next((p for p in self.peers if p.named and p.name == name), None)

    def peer_at(self, wg_ip: IPv4Address) -> StaticPeer | None:
        return next((p for p in self.peers if p.wg_ip == wg_ip), None)


MAX_ROUTED = 64  # networks in network.routedSubnets


def _routed(value: Any, source: str) -> tuple[IPv4Network, ...] | None:
    if value is None:
        return None
    fld = "network.routedSubnets"
    return checks.routed_subnets(value, source, fld, default_route=False, limit=MAX_ROUTED)


def parse_net(data: Any, source: str, key_files: Mapping[str, tuple[str, str]] | None = None) -> NetConfig:
    """`key_files`: what the shell read for `network.sharedKeyFile` and
    `network.previousSharedKeyFile`, field name -> (path, text); a key may be given inline
    (sharedKey, as the original tool's net.yaml has it) or in such a file, not both."""
    top = checks.mapping(data, source, "", ("network", "peers", "leaves"), ("network",))
    raw = top["network"]
    by_file = isinstance(raw, dict) and raw.get("sharedKeyFile") is not None
    network = checks.mapping(
        raw,
        source,
        "network",
        ("sharedKey", "sharedKeyFile", "previousSharedKey", "previousSharedKeyFile", "subnet")
        + ("caPublicKey", "revokedCerts", "routedSubnets"),
        ("subnet",) if by_file else ("sharedKey", "subnet"),
    )
    key = _network_key(network, key_files or {}, source, "sharedKey")
    assert key is not None  # one of sharedKey and sharedKeyFile is required above
    previous = _network_key(network, key_files or {}, source, "previousSharedKey")
    if previous is not None and previous == key:
        if network.get("previousSharedKeyFile") is not None:
            raise ConfigError(
                source, "network.previousSharedKeyFile", "holds the same key as the current one"
            )
        raise ConfigError(source, "network.previousSharedKey", "is the same as sharedKey")
    subnet, warning = checks.subnet(network["subnet"], source, "network.subnet")
    ca = network.get("caPublicKey")
    revoked = network.get("revokedCerts") or []
    if not isinstance(revoked, list):
        raise ConfigError(
            source, "network.revokedCerts", "must be a list of serials (as `cert show` prints them)"
        )
    net = NetConfig(
        key,
        subnet,
        (),
        source,
        (warning,) if warning else (),
        ca_public_key=None if ca is None else checks.ca_key(ca, source, "network.caPublicKey"),
        revoked=frozenset(
            checks.serial(v, source, f"network.revokedCerts[{i}]") for i, v in enumerate(revoked)
        ),
        previous_key=previous,
        routed_subnets=_routed(network.get("routedSubnets"), source),
    )
    raw = top.get("peers")
    if raw is None:
        return _with_leaves(net, top.get("leaves"))
    if isinstance(raw, dict):
        entries = [
            (f"peers.{name}", {**_peer_spec(spec, source, f"peers.{name}"), "name": name})
            for name, spec in raw.items()
        ]
    elif isinstance(raw, list):
        entries = [
            (f"peers[{i}]", _peer_spec(spec, source, f"peers[{i}]", named=True)) for i, spec in enumerate(raw)
        ]
    else:
        raise ConfigError(
            source,
            "peers",
            f"must be a list of static nodes (- endPoint: HOST:PORT ...) or a mapping of name to "
            f"settings, got {type(raw).__name__}",
        )
    return _with_leaves(_with_peers(net, entries, source), top.get("leaves"))


def _with_leaves(net: NetConfig, raw: Any) -> NetConfig:
    if raw is None:
        return net
    statics = {p.name: p.wg_ip for p in net.peers if p.named}
    pinned = [p.public_key for p in net.peers if p.public_key is not None]
    return replace(net, leaves=parse_leaves(raw, net.source, net.subnet, statics, pinned))


def _network_key(
    network: dict[str, Any], key_files: Mapping[str, tuple[str, str]], source: str, fld: str
) -> bytes | None:
    """The key given inline as `fld` or in the file named by `fld`File (read by the shell)."""
    inline, named = network.get(fld), network.get(f"{fld}File")
    if named is None:
        return None if inline is None else checks.shared_key(inline, source, f"network.{fld}")
    if inline is not None:
        raise ConfigError(source, f"network.{fld}File", f"give {fld} or {fld}File, not both")
    if f"{fld}File" not in key_files:
        raise ConfigError(
            source, f"network.{fld}File", "the file was not read (load net.yaml with configfile)"
        )
    path, text = key_files[f"{fld}File"]
    return checks.shared_key(text, path, "(file)")


def add_static_peers(net: NetConfig, specs: Sequence[str]) -> NetConfig:
    """The static nodes given with `--static-peer endPoint=HOST:PORT,wgIp=IP[,adminPort=P]
    [,name=N]` on top of net.yaml's, checked like its entries (and against them)."""
    entries = []
    for i, text in enumerate(specs):
        fld = f"{STATIC_PEER_OPTION}[{i}]"
        spec: dict[str, Any] = {}
        for item in text.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise ConfigError(
                    COMMAND_LINE, fld, f"expected KEY=VALUE items ({', '.join(_PEER_KEYS)}), got {item!r}"
                )
            if key in spec:
                raise ConfigError(COMMAND_LINE, f"{fld}.{key}", "given twice")
            spec[key] = int(value) if key == "adminPort" and value.isdigit() else value
        entries.append((fld, _peer_spec(spec, COMMAND_LINE, fld, named=True)))
    return _with_peers(net, entries, COMMAND_LINE)


def _peer_spec(spec: Any, source: str, fld: str, named: bool = False) -> dict[str, Any]:
    """One static node's raw settings, checked for shape; `named`: list form (name optional)."""
    if named and not isinstance(spec, dict):
        got = "nothing" if spec is None else type(spec).__name__
        raise ConfigError(source, fld, f"must be a mapping with endPoint, wgIp (adminPort, name), got {got}")
    allowed = _PEER_KEYS if named else _PEER_KEYS[1:]
    return dict(checks.mapping(spec, source, fld, allowed, ("endPoint", "wgIp")))


def _with_peers(net: NetConfig, entries: list[tuple[str, dict[str, Any]]], source: str) -> NetConfig:
    peers = list(net.peers)
    for fld, spec in entries:
        peer = _static_peer(spec, net.subnet, source, fld)
        for other in peers:
            for what, same, reason in (
                ("wgIp", other.wg_ip == peer.wg_ip, f"{peer.wg_ip} is already used by peer {other.name}"),
                (
                    "endPoint",
                    other.endpoint == peer.endpoint,
                    f"{peer.endpoint} is already peer {other.name}'s",
                ),
                ("name", other.name == peer.name, f"{peer.name} is already another peer's name"),
            ):
                if same:
                    raise ConfigError(
                        source,
                        fld if fld.startswith("peers.") and what == "name" else f"{fld}.{what}",
                        reason,
                    )
        peers.append(peer)
    return replace(net, peers=tuple(peers))


def _static_peer(spec: dict[str, Any], subnet: IPv4Network, source: str, fld: str) -> StaticPeer:
    host, port = checks.endpoint(spec["endPoint"], source, f"{fld}.endPoint")
    admin = default_admin_port(port)
    if spec.get("adminPort") is not None:
        admin = checks.port(spec["adminPort"], source, f"{fld}.adminPort")
    if admin == port:
        raise ConfigError(source, f"{fld}.adminPort", f"must differ from the WireGuard port {port}")
    ip = checks.ipv4(spec["wgIp"], source, f"{fld}.wgIp")
    checks.check_in_subnet(ip, subnet, source, f"{fld}.wgIp", "network.subnet")
    pin = (
        None
        if spec.get("publicKey") is None
        else checks.public_key(spec["publicKey"], source, f"{fld}.publicKey")
    )
    raw_name = spec.get("name")
    if raw_name is None:
        return StaticPeer(default_static_name(ip), host, port, admin, ip, named=False, public_key=pin)
    where = fld if fld.startswith("peers.") else f"{fld}.name"
    return StaticPeer(checks.name(raw_name, source, where), host, port, admin, ip, public_key=pin)


def default_admin_port(wg_port: int) -> int:
    """The control channel's port when none is given: the WireGuard port + 1 (- 1 at 65535)."""
    return wg_port + 1 if wg_port < 65535 else wg_port - 1


def default_static_name(wg_ip: IPv4Address) -> str:
    """The name of a static node listed without one: stable, from its address."""
    return "static-" + str(wg_ip).replace(".", "-")
