"""Checks of single configuration values, shared by net.yaml, peer.yaml and the command line.

Each check takes the raw value, the file (or "command line") and the field as a dotted path,
and returns the parsed value or raises one `ConfigError` naming all three.
"""

from __future__ import annotations

import base64
import binascii
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

BACKENDS = ("auto", "kernel", "wireguard-go", "boringtun", "existing")  # backends.KINDS
SHARED_KEY_LEN = 32
NAME_MAX = 32
IFNAMSIZ = 16  # Linux: interface names are at most IFNAMSIZ - 1 bytes
MAX_SUBNETS = 8  # subnets a node may route for (a certificate holds as many)

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SERIAL_RE = re.compile(r"[0-9a-fA-F]{1,16}\Z")
CA_KEY_LEN = 32  # an Ed25519 public key
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


def typed(value: Any, kind: type, what: str, file: str, fld: str) -> Any:
    # bool is an int in Python, but `wgPort: yes` is a mistake, not port 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(file, fld, f"must be {what}, got {value!r}")
    return value


def name(value: Any, file: str, fld: str) -> str:
    text: str = typed(value, str, "a name (text; quote it if it looks like a number)", file, fld)
    if not text:
        raise ConfigError(file, fld, "must not be empty")
    if len(text) > NAME_MAX:
        raise ConfigError(file, fld, f"too long ({len(text)} characters, at most {NAME_MAX})")
    if not _NAME_RE.match(text):
        raise ConfigError(file, fld, f"invalid name {text!r}: use letters, digits, '.', '_', '-' (not first)")
    return text


def port(value: Any, file: str, fld: str) -> int:
    number = typed(value, int, "a port number", file, fld)
    if not 1 <= number <= 65535:
        raise ConfigError(file, fld, f"port {number} out of range 1..65535")
    return int(number)


def ipv4(value: Any, file: str, fld: str) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    text: str = typed(value, str, "an IPv4 address", file, fld)
    try:
        return IPv4Address(text)
    except ValueError:
        raise ConfigError(file, fld, f"not an IPv4 address: {text!r}") from None


def interface_problem(text: str) -> str | None:
    """Why `text` is not a valid interface name, or None; config and the backends both ask.

    The kernel's dev_valid_name(): 1 to IFNAMSIZ - 1 bytes, not "." or "..", no '/', ':' or
    white space. Control characters, which the kernel would take, are refused too: the name
    is also part of our file names, unit names and log lines.
    """
    if not text or text in (".", ".."):
        return f"invalid interface name {text!r}"
    if len(text.encode()) >= IFNAMSIZ:
        return f"invalid interface name {text!r}: too long (at most {IFNAMSIZ - 1} bytes)"
    if any(c in "/:" or c.isspace() or not c.isprintable() for c in text):
        return f"invalid interface name {text!r}: no '/', ':', spaces or control characters"
    return None


def interface(value: Any, file: str, fld: str) -> str:
    text: str = typed(value, str, "an interface name", file, fld)
    problem = interface_problem(text)
    if problem is not None:
        raise ConfigError(file, fld, problem)
    return text


def path(value: Any, file: str, fld: str) -> Path:
    if isinstance(value, Path):
        value = str(value)
    text = typed(value, str, "a file name", file, fld)
    if not text.strip() or "\0" in text:
        raise ConfigError(file, fld, "must be a file name")
    return Path(text)


def boolean(value: Any, file: str, fld: str) -> bool:
    return bool(typed(value, bool, "true or false", file, fld))


MODES = ("normal", "mobile")


def mode(value: Any, file: str, fld: str) -> str:
    text: str = typed(value, str, "a mode", file, fld)
    if text not in MODES:
        raise ConfigError(file, fld, f"unknown mode {text!r} (one of: {', '.join(MODES)})")
    return text


def backend(value: Any, file: str, fld: str) -> str:
    text: str = typed(value, str, "a backend name", file, fld)
    if text not in BACKENDS:
        raise ConfigError(file, fld, f"unknown backend {text!r} (one of: {', '.join(BACKENDS)})")
    return text


def host(text: str, file: str, fld: str) -> str:
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return str(IPv4Address(text))
        except ValueError:
            raise ConfigError(file, fld, f"not an IPv4 address: {text!r}") from None
    fqdn = text.removesuffix(".")
    if not fqdn or len(fqdn) > 253 or not all(_LABEL_RE.match(lb) for lb in fqdn.split(".")):
        raise ConfigError(file, fld, f"not an IPv4 address or DNS name: {text!r}")
    return text


def endpoint(value: Any, file: str, fld: str) -> tuple[str, int]:
    text: str = typed(value, str, "host:port", file, fld)
    hostpart, sep, portpart = text.rpartition(":")
    if ":" in hostpart:
        raise ConfigError(file, fld, f"IPv6 endpoints are not supported: {text!r}")
    if not sep or not hostpart:
        raise ConfigError(file, fld, f"expected host:port, got {text!r}")
    if not portpart.isdigit():
        raise ConfigError(file, fld, f"port is not a number in {text!r}")
    return host(hostpart, file, fld), port(int(portpart), file, fld)


def shared_key(value: Any, file: str, fld: str) -> bytes:
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


def public_key(value: Any, file: str, fld: str) -> bytes:
    """A WireGuard public key: base64 of 32 bytes (what `wg_netmanager pubkey` prints)."""
    text: str = typed(value, str, "a WireGuard public key (base64)", file, fld)
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(file, fld, f"not base64: {text!r}") from None
    if len(raw) != 32 or raw == bytes(32):
        raise ConfigError(file, fld, f"not a WireGuard public key (32 bytes): {text!r}")
    return raw


def subnet(value: Any, file: str, fld: str) -> tuple[IPv4Network, str | None]:
    """The mesh subnet, and a warning when it had host bits set: the original tool's own
    example says `10.1.1.0/8`, which it took as 10.0.0.0/8, and so do we."""
    text: str = typed(value, str, "an IPv4 network like 10.1.1.0/24", file, fld)
    if "/" not in text:
        raise ConfigError(file, fld, f"missing prefix length in {text!r} (e.g. 10.1.1.0/24)")
    try:
        net = IPv4Network(text, strict=False)
    except ValueError:
        raise ConfigError(file, fld, f"not an IPv4 network: {text!r}") from None
    if net.prefixlen > 30:
        raise ConfigError(file, fld, f"{net} is too small for a mesh (at most /30)")
    warning = None
    if str(net) != text:
        warning = f"{file}: {fld}: warning: host bits set in {text!r}, using {net}"
    return net, warning


def routed_subnets(
    value: Any, file: str, fld: str, default_route: bool = False, limit: int = MAX_SUBNETS
) -> tuple[IPv4Network, ...]:
    """The LAN subnets a node routes for (peer.yaml `subnets`, `--subnet`, `cert sign
    --subnet`): a list of networks written without host bits, none twice, at most
    MAX_SUBNETS; 0.0.0.0/0 only with `default_route` (a certificate may allow an exit node;
    a node announces one as such, not as a subnet)."""
    items = [value] if isinstance(value, str) else typed(value, list, "a list of networks", file, fld)
    if len(items) > limit:
        raise ConfigError(file, fld, f"{len(items)} given, at most {limit}")
    nets: list[IPv4Network] = []
    for item in items:
        text: str = typed(item, str, "an IPv4 network like 192.168.1.0/24", file, fld)
        if "/" not in text:
            raise ConfigError(file, fld, f"missing prefix length in {text!r} (e.g. 192.168.1.0/24)")
        try:
            net = IPv4Network(text, strict=False)
        except ValueError:
            raise ConfigError(file, fld, f"not an IPv4 network: {text!r}") from None
        if str(net) != text:
            raise ConfigError(file, fld, f"host bits set in {text!r} (did you mean {net}?)")
        if net.prefixlen == 0 and not default_route:
            raise ConfigError(file, fld, f"{net} is every address, not a subnet")
        if net in nets:
            raise ConfigError(file, fld, f"{net} given twice")
        nets.append(net)
    return tuple(nets)


def mapping(
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


def check_in_subnet(ip: IPv4Address, subnet: IPv4Network, file: str, fld: str, src: str) -> None:
    if ip not in subnet:
        raise ConfigError(file, fld, f"{ip} is outside the subnet {subnet} of {src}")
    if ip in (subnet.network_address, subnet.broadcast_address):
        kind = "network" if ip == subnet.network_address else "broadcast"
        raise ConfigError(file, fld, f"{ip} is the {kind} address of {subnet}")


def serial(value: Any, file: str, fld: str) -> int:
    """A serial in a configuration file: hex text, as `cert show` prints it."""
    if not isinstance(value, str):
        # YAML reads 0123456789012345 as a number (or octal): hex must stay text.
        raise ConfigError(file, fld, 'must be a quoted hex serial like "00000000000000ab"')
    if not _SERIAL_RE.match(value):
        raise ConfigError(file, fld, f"not a certificate serial (up to 16 hex digits): {value!r}")
    return int(value, 16)


def ca_key(value: Any, file: str, fld: str) -> bytes:
    """The CA's public key in a configuration file: the base64 line of ca.pub."""
    try:
        raw = base64.b64decode(value.strip(), validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != CA_KEY_LEN:
        raise ConfigError(file, fld, f"must be the base64 of a {CA_KEY_LEN}-byte key (the line in ca.pub)")
    return raw
