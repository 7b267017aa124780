"""Node configuration: net.yaml (the same on every node), peer.yaml and the command line.

Parsing is pure: `parse_net` and `parse_peer_file` take data already loaded from YAML,
`add_static_peers` adds the static nodes given on the command line, and `node_settings`
merges the layers (command line wins over peer.yaml). Files are read in `configfile`. Every
mistake raises one `ConfigError` naming the file, the field as a dotted path, and what is
wrong, so the CLI can print a single line.

net.yaml lists its static nodes in one of two forms. The mapping form names them
(`peers: {beta: {endPoint, adminPort, wgIp}}`). The list form is the original Rust
wg_netmanager's (`peers: [{endPoint, adminPort, wgIp}]`, `name` optional): an entry without
a name is identified by its wgIp (the node started with that `-a` is that static node) and
is known as `static-A-B-C-D` until it answers with the name it runs under.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from . import checks
from .checks import BACKENDS, IFNAMSIZ, NAME_MAX, SHARED_KEY_LEN, ConfigError

DEFAULT_INTERFACE = "wg0"
DEFAULT_WG_PORT = 50000
DEFAULT_STATE_DIR = Path("/var/lib/wg_netmanager")
DEFAULT_RUN_DIR = Path("/run/wg_netmanager")
DEFAULT_NET_FILE = Path("/etc/wg_netmanager/net.yaml")
COMMAND_LINE = "command line"
STATIC_PEER_OPTION = "--static-peer"
_PEER_KEYS = ("name", "endPoint", "adminPort", "wgIp", "publicKey")

__all__ = ["BACKENDS", "IFNAMSIZ", "NAME_MAX", "SHARED_KEY_LEN", "ConfigError"]


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


@dataclass(frozen=True)
class PeerFile:
    """One layer of per-node settings (peer.yaml or the command line); None = not given."""

    name: str | None = None
    wg_ip: IPv4Address | None = None
    interface: str | None = None
    existing_interface: bool | None = None
    wg_port: int | None = None
    admin_port: int | None = None
    backend: str | None = None
    cert: Path | None = None
    source: str = COMMAND_LINE

    def field_name(self, attr: str) -> str:
        yaml_key, option, _ = _PEER_FIELDS[attr]
        return option if self.source == COMMAND_LINE else yaml_key


@dataclass(frozen=True)
class NodeSettings:
    name: str
    wg_ip: IPv4Address
    interface: str
    existing_interface: bool
    wg_port: int
    admin_port: int
    backend: str
    state_dir: Path
    run_dir: Path
    verbose: int = 0
    cert: Path | None = None  # this node's certificate from the network CA
    cert_source: str = COMMAND_LINE  # where `cert` was given (peer.yaml or the command line)


# --- net.yaml ---


def parse_net(data: Any, source: str, key_files: Mapping[str, tuple[str, str]] | None = None) -> NetConfig:
    """`key_files`: what the shell read for `network.sharedKeyFile` and
    `network.previousSharedKeyFile`, field name -> (path, text); a key may be given inline
    (sharedKey, as the original tool's net.yaml has it) or in such a file, not both."""
    top = checks.mapping(data, source, "", ("network", "peers"), ("network",))
    raw = top["network"]
    by_file = isinstance(raw, dict) and raw.get("sharedKeyFile") is not None
    network = checks.mapping(
        raw,
        source,
        "network",
        ("sharedKey", "sharedKeyFile", "previousSharedKey", "previousSharedKeyFile", "subnet")
        + ("caPublicKey", "revokedCerts"),
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
    )
    raw = top.get("peers")
    if raw is None:
        return net
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
    return _with_peers(net, entries, source)


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


# --- peer.yaml and command line ---

# Each PeerFile attribute: its peer.yaml key, its command-line option, and its check.
_PEER_FIELDS: dict[str, tuple[str, str, Callable[[Any, str, str], Any]]] = {
    "name": ("name", "--name", checks.name),
    "wg_ip": ("wgIp", "--wg-ip", checks.ipv4),
    "interface": ("wgInterface", "--interface", checks.interface),
    "existing_interface": ("existingInterface", "--existing-interface", checks.boolean),
    "wg_port": ("wgPort", "--wg-port", checks.port),
    "admin_port": ("adminPort", "--admin-port", checks.port),
    "backend": ("backend", "--backend", checks.backend),
    "cert": ("cert", "--cert", checks.path),
}


def parse_peer_file(data: Any, source: str) -> PeerFile:
    keys = {attr: spec[0] for attr, spec in _PEER_FIELDS.items()}
    top = checks.mapping({} if data is None else data, source, "", tuple(keys.values()))
    values = {attr: top.get(key) for attr, key in keys.items()}
    return _peer_layer(values, source)


def peer_overrides(source: str = COMMAND_LINE, **values: Any) -> PeerFile:
    """The command-line layer: keyword arguments named like PeerFile's fields."""
    unknown = set(values) - set(_PEER_FIELDS)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    return _peer_layer(values, source)


def _peer_layer(values: dict[str, Any], source: str) -> PeerFile:
    layer = PeerFile(source=source)
    checked = {
        attr: _PEER_FIELDS[attr][2](value, source, layer.field_name(attr))
        for attr, value in values.items()
        if value is not None
    }
    cert = checked.get("cert")
    if cert is not None and not cert.is_absolute() and source != COMMAND_LINE:
        checked["cert"] = Path(source).parent / cert  # beside the peer.yaml that names it
    return PeerFile(**checked, source=source)


def node_settings(
    net: NetConfig,
    peer_file: PeerFile | None = None,
    overrides: PeerFile | None = None,
    *,
    state_dir: Path = DEFAULT_STATE_DIR,
    run_dir: Path = DEFAULT_RUN_DIR,
    verbose: int = 0,
) -> NodeSettings:
    """Merge the layers (overrides win), apply defaults, and check them against net.yaml.

    This node is a static node when net.yaml names it, or when its wgIp is that of a static
    node listed without a name (the original tool's list form)."""
    layers = [lay for lay in (overrides, peer_file) if lay is not None]
    fallback = peer_file or PeerFile(source=COMMAND_LINE)

    def pick(attr: str) -> tuple[Any, PeerFile]:
        for lay in layers:
            if getattr(lay, attr) is not None:
                return getattr(lay, attr), lay
        return None, fallback

    def fail(attr: str, lay: PeerFile, reason: str) -> ConfigError:
        return ConfigError(lay.source, lay.field_name(attr), reason)

    name, name_lay = pick("name")
    wg_ip, lay = pick("wg_ip")
    static = net.peer_named(name) if name is not None else None
    if static is None and wg_ip is not None:
        unnamed = net.peer_at(wg_ip)
        static = unnamed if unnamed is not None and not unnamed.named else None
    if name is None:
        if static is None:
            raise fail("name", name_lay, "missing: this node's name is required")
        name = static.name
    if wg_ip is None:
        if static is None:
            raise fail("wg_ip", lay, "missing: this node's address in the mesh is required")
        wg_ip = static.wg_ip  # already checked against the subnet by parse_net
    elif static is not None:
        if wg_ip != static.wg_ip:
            raise fail("wg_ip", lay, f"{wg_ip} differs from {static.wg_ip} given for {name} in {net.source}")
    else:
        checks.check_in_subnet(wg_ip, net.subnet, lay.source, lay.field_name("wg_ip"), net.source)
        for peer in net.peers:
            if peer.wg_ip == wg_ip:
                raise fail("wg_ip", lay, f"{wg_ip} is already used by peer {peer.name} in {net.source}")

    interface = pick("interface")[0] or DEFAULT_INTERFACE
    backend = pick("backend")[0] or "auto"
    existing = bool(pick("existing_interface")[0])
    # An existing interface is adopted as it is; `existing` is the backend that does that.
    if backend == "existing":
        existing = True
    elif existing and backend == "auto":
        backend = "existing"

    wg_port, wg_lay = pick("wg_port")
    if wg_port is None:
        wg_port = static.endpoint_port if static is not None else dynamic_port(name)
    admin_port, admin_lay = pick("admin_port")
    admin_given = admin_port is not None
    if admin_port is None:
        admin_port = static.admin_port if static is not None else default_admin_port(wg_port)
    if admin_port == wg_port:
        blame, lay = ("admin_port", admin_lay) if admin_given else ("wg_port", wg_lay)
        raise fail(blame, lay, f"the admin port and the WireGuard port are both {wg_port}")

    cert, cert_lay = pick("cert")
    return NodeSettings(
        name=name,
        wg_ip=wg_ip,
        interface=interface,
        existing_interface=existing,
        wg_port=wg_port,
        admin_port=admin_port,
        backend=backend,
        state_dir=Path(state_dir),
        run_dir=Path(run_dir),
        verbose=verbose,
        cert=cert,
        cert_source=cert_lay.source,
    )


def dynamic_port(name: str) -> int:
    """Default WireGuard port of a non-static node: stable, and different per name.

    Linux NAT keeps a host's source port only while no other host behind the same router
    uses it; two nodes behind one router both on 50000 make one of them get a port that
    differs per destination, and the endpoint a static node observes is then wrong for
    hole punching. Distinct ports avoid that.
    """
    return DEFAULT_WG_PORT + 2 * (zlib.crc32(name.encode()) % 5000)
