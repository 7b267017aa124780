"""Node configuration: net.yaml (the same on every node), peer.yaml and the command line.

Parsing is pure: `parse_net` and `parse_peer_file` take data already loaded from YAML and
`node_settings` merges the layers (command line wins over peer.yaml). Only the `load_*`
functions read files. Every mistake raises one `ConfigError` naming the file, the field as a
dotted path, and what is wrong, so the CLI can print a single line.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

BACKENDS = ("auto", "kernel", "wireguard-go", "boringtun", "existing")
DEFAULT_INTERFACE = "wg0"
DEFAULT_WG_PORT = 50000
DEFAULT_STATE_DIR = Path("/var/lib/wg_netmanager")
DEFAULT_RUN_DIR = Path("/run/wg_netmanager")
DEFAULT_NET_FILE = Path("/etc/wg_netmanager/net.yaml")
SHARED_KEY_LEN = 32
NAME_MAX = 32
IFNAMSIZ = 16  # Linux: interface names are at most IFNAMSIZ - 1 bytes
COMMAND_LINE = "command line"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


class ConfigError(Exception):
    """A user mistake in a configuration file or on the command line."""

    def __init__(self, file: str, field: str, reason: str) -> None:
        super().__init__(file, field, reason)
        self.file = file
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class StaticPeer:
    """A public node listed in net.yaml; its endpoint host may be a DNS name."""

    name: str
    endpoint_host: str
    endpoint_port: int
    admin_port: int
    wg_ip: IPv4Address

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

    def peer_named(self, name: str) -> StaticPeer | None:
        return next((p for p in self.peers if p.name == name), None)


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


# --- value checks: each returns the parsed value or raises ConfigError(file, fld, …) ---


def _typed(value: Any, kind: type, what: str, file: str, fld: str) -> Any:
    # bool is an int in Python, but `wgPort: yes` is a mistake, not port 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(file, fld, f"must be {what}, got {value!r}")
    return value


def _name(value: Any, file: str, fld: str) -> str:
    text: str = _typed(value, str, "a name (text; quote it if it looks like a number)", file, fld)
    if not text:
        raise ConfigError(file, fld, "must not be empty")
    if len(text) > NAME_MAX:
        raise ConfigError(file, fld, f"too long ({len(text)} characters, at most {NAME_MAX})")
    if not _NAME_RE.match(text):
        raise ConfigError(file, fld, f"invalid name {text!r}: use letters, digits, '.', '_', '-' (not first)")
    return text


def _port(value: Any, file: str, fld: str) -> int:
    port = _typed(value, int, "a port number", file, fld)
    if not 1 <= port <= 65535:
        raise ConfigError(file, fld, f"port {port} out of range 1..65535")
    return int(port)


def _ipv4(value: Any, file: str, fld: str) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    text: str = _typed(value, str, "an IPv4 address", file, fld)
    try:
        return IPv4Address(text)
    except ValueError:
        raise ConfigError(file, fld, f"not an IPv4 address: {text!r}") from None


def _interface(value: Any, file: str, fld: str) -> str:
    text: str = _typed(value, str, "an interface name", file, fld)
    # The kernel's dev_valid_name(): the name is also a path component of our files.
    if not text or text in (".", ".."):
        raise ConfigError(file, fld, f"invalid interface name {text!r}")
    if len(text.encode()) >= IFNAMSIZ:
        raise ConfigError(file, fld, f"interface name {text!r} too long (at most {IFNAMSIZ - 1})")
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in text):
        raise ConfigError(file, fld, f"invalid interface name {text!r}: no '/', ':' or spaces")
    return text


def _bool(value: Any, file: str, fld: str) -> bool:
    return bool(_typed(value, bool, "true or false", file, fld))


def _backend(value: Any, file: str, fld: str) -> str:
    text: str = _typed(value, str, "a backend name", file, fld)
    if text not in BACKENDS:
        raise ConfigError(file, fld, f"unknown backend {text!r} (one of: {', '.join(BACKENDS)})")
    return text


def _host(text: str, file: str, fld: str) -> str:
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return str(IPv4Address(text))
        except ValueError:
            raise ConfigError(file, fld, f"not an IPv4 address: {text!r}") from None
    name = text.removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL_RE.match(lb) for lb in name.split(".")):
        raise ConfigError(file, fld, f"not an IPv4 address or DNS name: {text!r}")
    return text


def _endpoint(value: Any, file: str, fld: str) -> tuple[str, int]:
    text: str = _typed(value, str, "host:port", file, fld)
    host, sep, port = text.rpartition(":")
    if ":" in host:
        raise ConfigError(file, fld, f"IPv6 endpoints are not supported: {text!r}")
    if not sep or not host:
        raise ConfigError(file, fld, f"expected host:port, got {text!r}")
    if not port.isdigit():
        raise ConfigError(file, fld, f"port is not a number in {text!r}")
    return _host(host, file, fld), _port(int(port), file, fld)


def _shared_key(value: Any, file: str, fld: str) -> bytes:
    # The value itself is never echoed: it is the network's secret.
    if not isinstance(value, str):
        raise ConfigError(file, fld, "must be base64 text (create one with: wg_netmanager genkey)")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(file, fld, "not valid base64 (create one with: wg_netmanager genkey)") from None
    if len(key) != SHARED_KEY_LEN:
        raise ConfigError(
            file, fld, f"must decode to {SHARED_KEY_LEN} bytes, got {len(key)} (wg_netmanager genkey)"
        )
    return key


def _subnet(value: Any, file: str, fld: str) -> IPv4Network:
    text: str = _typed(value, str, "an IPv4 network like 10.1.1.0/24", file, fld)
    if "/" not in text:
        raise ConfigError(file, fld, f"missing prefix length in {text!r} (e.g. 10.1.1.0/24)")
    try:
        net = IPv4Network(text, strict=False)
    except ValueError:
        raise ConfigError(file, fld, f"not an IPv4 network: {text!r}") from None
    if str(net) != text:
        raise ConfigError(file, fld, f"host bits set in {text!r} (did you mean {net}?)")
    if net.prefixlen > 30:
        raise ConfigError(file, fld, f"{net} is too small for a mesh (at most /30)")
    return net


def _mapping(
    value: Any, file: str, fld: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    where = fld or "(document)"
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        raise ConfigError(file, where, f"must be a mapping, got {got}")
    prefix = f"{fld}." if fld else ""
    for key in value:
        if key not in allowed:
            raise ConfigError(
                file, f"{prefix}{key}", f"unknown field (expected one of: {', '.join(allowed)})"
            )
    for key in required:
        if value.get(key) is None:
            raise ConfigError(file, f"{prefix}{key}", "missing")
    return value


def _check_in_subnet(ip: IPv4Address, subnet: IPv4Network, file: str, fld: str, src: str) -> None:
    if ip not in subnet:
        raise ConfigError(file, fld, f"{ip} is outside the subnet {subnet} of {src}")
    if ip in (subnet.network_address, subnet.broadcast_address):
        kind = "network" if ip == subnet.network_address else "broadcast"
        raise ConfigError(file, fld, f"{ip} is the {kind} address of {subnet}")


# --- net.yaml ---


def parse_net(data: Any, source: str) -> NetConfig:
    top = _mapping(data, source, "", ("network", "peers"), ("network",))
    network = _mapping(top["network"], source, "network", ("sharedKey", "subnet"), ("sharedKey", "subnet"))
    key = _shared_key(network["sharedKey"], source, "network.sharedKey")
    subnet = _subnet(network["subnet"], source, "network.subnet")
    raw_peers = top.get("peers") or {}
    if not isinstance(raw_peers, dict):
        raise ConfigError(source, "peers", "must be a mapping of name to settings")
    peers: list[StaticPeer] = []
    owner: dict[IPv4Address, str] = {}
    for raw_name, spec in raw_peers.items():
        name = _name(raw_name, source, f"peers.{raw_name}")
        fld = f"peers.{name}"
        spec = _mapping(spec, source, fld, ("endPoint", "adminPort", "wgIp"), ("endPoint", "wgIp"))
        host, port = _endpoint(spec["endPoint"], source, f"{fld}.endPoint")
        admin = port + 1 if port < 65535 else port - 1
        if spec.get("adminPort") is not None:
            admin = _port(spec["adminPort"], source, f"{fld}.adminPort")
        if admin == port:
            raise ConfigError(source, f"{fld}.adminPort", f"must differ from the WireGuard port {port}")
        ip = _ipv4(spec["wgIp"], source, f"{fld}.wgIp")
        _check_in_subnet(ip, subnet, source, f"{fld}.wgIp", "network.subnet")
        if ip in owner:
            raise ConfigError(source, f"{fld}.wgIp", f"{ip} is already used by peer {owner[ip]}")
        owner[ip] = name
        peers.append(StaticPeer(name, host, port, admin, ip))
    return NetConfig(shared_key=key, subnet=subnet, peers=tuple(peers), source=source)


# --- peer.yaml and command line ---

# Each PeerFile attribute: its peer.yaml key, its command-line option, and its check.
_PEER_FIELDS: dict[str, tuple[str, str, Callable[[Any, str, str], Any]]] = {
    "name": ("name", "--name", _name),
    "wg_ip": ("wgIp", "--wg-ip", _ipv4),
    "interface": ("wgInterface", "--interface", _interface),
    "existing_interface": ("existingInterface", "--existing-interface", _bool),
    "wg_port": ("wgPort", "--wg-port", _port),
    "admin_port": ("adminPort", "--admin-port", _port),
    "backend": ("backend", "--backend", _backend),
}


def parse_peer_file(data: Any, source: str) -> PeerFile:
    keys = {attr: spec[0] for attr, spec in _PEER_FIELDS.items()}
    top = _mapping({} if data is None else data, source, "", tuple(keys.values()))
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
    """Merge the layers (overrides win), apply defaults, and check them against net.yaml."""
    layers = [lay for lay in (overrides, peer_file) if lay is not None]
    fallback = peer_file or PeerFile(source=COMMAND_LINE)

    def pick(attr: str) -> tuple[Any, PeerFile]:
        for lay in layers:
            if getattr(lay, attr) is not None:
                return getattr(lay, attr), lay
        return None, fallback

    def fail(attr: str, lay: PeerFile, reason: str) -> ConfigError:
        return ConfigError(lay.source, lay.field_name(attr), reason)

    name, lay = pick("name")
    if name is None:
        raise fail("name", lay, "missing: this node's name is required")
    static = net.peer_named(name)

    wg_ip, lay = pick("wg_ip")
    if wg_ip is None:
        if static is None:
            raise fail("wg_ip", lay, "missing: this node's address in the mesh is required")
        wg_ip = static.wg_ip  # already checked against the subnet by parse_net
    elif static is not None:
        if wg_ip != static.wg_ip:
            raise fail("wg_ip", lay, f"{wg_ip} differs from {static.wg_ip} given for {name} in {net.source}")
    else:
        _check_in_subnet(wg_ip, net.subnet, lay.source, lay.field_name("wg_ip"), net.source)
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
        if static is not None:
            admin_port = static.admin_port
        else:
            admin_port = wg_port + 1 if wg_port < 65535 else wg_port - 1
    if admin_port == wg_port:
        blame, lay = ("admin_port", admin_lay) if admin_given else ("wg_port", wg_lay)
        raise fail(blame, lay, f"the admin port and the WireGuard port are both {wg_port}")

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
    )


def dynamic_port(name: str) -> int:
    """Default WireGuard port of a non-static node: stable, and different per name.

    Linux NAT keeps a host's source port only while no other host behind the same router
    uses it; two nodes behind one router both on 50000 make one of them get a port that
    differs per destination, and the endpoint a static node observes is then wrong for
    hole punching. Distinct ports avoid that.
    """
    return DEFAULT_WG_PORT + 2 * (zlib.crc32(name.encode()) % 5000)


# --- files ---


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: construct_mapping reports it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(path: Path) -> Any:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(file, "(file)", f"cannot read: {reason}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        # Only problem and position: the error's snippet could quote the shared key line.
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise ConfigError(file, where, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "(document)", f"not valid YAML: {type(exc).__name__}") from None


def load_net(path: Path) -> NetConfig:
    data = load_yaml(path)
    net = parse_net(data, str(path))
    try:
        if os.stat(path).st_mode & 0o077:
            log.warning("%s is readable by other users but holds the shared key: chmod 600 it", path)
    except OSError:
        pass
    return net


def load_peer_file(path: Path) -> PeerFile:
    return parse_peer_file(load_yaml(path), str(path))
