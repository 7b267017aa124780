"""Node configuration: net.yaml (the same on every node, `netconfig`), peer.yaml and the
command line (here).

Parsing is pure: `parse_net` and `parse_peer_file` take data already loaded from YAML,
`add_static_peers` adds the static nodes given on the command line, and `node_settings`
merges the layers (command line wins over peer.yaml). Files are read in `configfile`. Every
mistake raises one `ConfigError` naming the file, the field as a dotted path, and what is
wrong, so the CLI can print a single line.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from . import checks
from .checks import BACKENDS, IFNAMSIZ, NAME_MAX, SHARED_KEY_LEN, ConfigError
from .netconfig import (
    COMMAND_LINE,
    STATIC_PEER_OPTION,
    NetConfig,
    StaticPeer,
    add_static_peers,
    default_admin_port,
    default_static_name,
    parse_net,
)

DEFAULT_INTERFACE = "wg0"
DEFAULT_WG_PORT = 50000
DEFAULT_STATE_DIR = Path("/var/lib/wg_netmanager")
DEFAULT_RUN_DIR = Path("/run/wg_netmanager")
DEFAULT_NET_FILE = Path("/etc/wg_netmanager/net.yaml")

__all__ = [
    "BACKENDS",
    "COMMAND_LINE",
    "IFNAMSIZ",
    "NAME_MAX",
    "SHARED_KEY_LEN",
    "STATIC_PEER_OPTION",
    "ConfigError",
    "NetConfig",
    "NodeSettings",
    "PeerFile",
    "StaticPeer",
    "add_static_peers",
    "default_admin_port",
    "default_static_name",
    "dynamic_port",
    "node_settings",
    "parse_net",
    "parse_peer_file",
    "peer_overrides",
]


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
    subnets: tuple[IPv4Network, ...] | None = None
    masquerade: bool | None = None
    exit_node: bool | None = None
    use_exit_node: str | None = None
    mode: str | None = None
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
    subnets: tuple[IPv4Network, ...] = ()  # LAN subnets this node routes into the mesh
    subnets_source: str = COMMAND_LINE  # where `subnets` was given
    masquerade: bool = False  # the mesh reaches them from this node's LAN address
    exit_node: bool = False  # this node offers the mesh its internet access (exits.py)
    use_exit_node: str | None = None  # the exit node whose internet access this node uses
    mobile: bool = False  # mode mobile: a data-limited node (core/mobile.py)


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
    "subnets": ("subnets", "--subnet", checks.routed_subnets),
    "masquerade": ("masquerade", "--masquerade", checks.boolean),
    "exit_node": ("exitNode", "--exit-node", checks.boolean),
    "use_exit_node": ("useExitNode", "--use-exit-node", checks.name),
    "mode": ("mode", "--mode", checks.mode),
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
    subnets, subnets_lay = pick("subnets")
    for net_ in subnets or ():
        if net_.overlaps(net.subnet):
            raise fail(
                "subnets", subnets_lay, f"{net_} overlaps the mesh subnet {net.subnet} of {net.source}"
            )
    exit_node = bool(pick("exit_node")[0])
    use_exit, exit_lay = pick("use_exit_node")
    if use_exit is not None and (exit_node or use_exit == name):
        why = "a node that offers an exit uses none" if use_exit != name else "this node itself"
        raise fail("use_exit_node", exit_lay, f"{use_exit}: {why}")
    mode, mode_lay = pick("mode")
    if mode == "mobile" and static is not None:
        raise fail("mode", mode_lay, f"mobile: {name} is a static node in {net.source}")
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
        subnets=subnets or (),
        subnets_source=subnets_lay.source,
        masquerade=bool(pick("masquerade")[0]),
        exit_node=exit_node,
        use_exit_node=use_exit,
        mobile=mode == "mobile",
    )


def dynamic_port(name: str) -> int:
    """Default WireGuard port of a non-static node: stable, and different per name.

    Linux NAT keeps a host's source port only while no other host behind the same router
    uses it; two nodes behind one router both on 50000 make one of them get a port that
    differs per destination, and the endpoint a static node observes is then wrong for
    hole punching. Distinct ports avoid that.
    """
    return DEFAULT_WG_PORT + 2 * (zlib.crc32(name.encode()) % 5000)
