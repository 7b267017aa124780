"""Render the status document (docs/INTERFACES.md) as a terse table, in the manner of `wg show`.

Pure: the current time is an argument, so the output is deterministic in tests.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

COLUMNS = ("NAME", "WG IP", "PATH", "GATEWAY", "ENDPOINT", "HANDSHAKE", "RX", "TX")
RIGHT_ALIGNED = {"RX", "TX"}
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: Any) -> str:
    if not isinstance(count, (int, float)) or isinstance(count, bool) or count < 0:
        return "-"
    value = float(count)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def format_age(timestamp: Any, now: float) -> str:
    """'never' for 0/None, else how long ago: '3s ago', '4m12s ago', '2h05m ago', '3d04h ago'."""
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool) or timestamp <= 0:
        return "never"
    age = max(0, int(now - timestamp))  # a skewed clock must not print a negative age
    if age < 60:
        return f"{age}s ago"
    minutes, seconds = divmod(age, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m ago"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h ago"


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ip_order(peer: dict[str, Any]) -> tuple[int, int, str]:
    try:
        return (0, int(IPv4Address(str(peer.get("wgIp")))), str(peer.get("name")))
    except ValueError:
        return (1, 0, str(peer.get("name")))


def _header(doc: dict[str, Any]) -> list[str]:
    interface = _text(doc.get("interface"))
    if doc.get("backend"):
        interface += f" ({doc['backend']})"
    converged = "yes" if doc.get("converged") else "no"
    name, wg_ip = _text(doc.get("name")), _text(doc.get("wgIp"))
    lines = [f"node: {name}  {wg_ip}  {interface}  converged: {converged}"]
    if doc.get("publicKey"):
        lines.append(f"  public key: {doc['publicKey']}")
    drops = doc.get("drops") or {}
    nonzero = [f"{kind} {n}" for kind, n in drops.items() if n]
    if nonzero:
        lines.append(f"  dropped: {', '.join(nonzero)}")
    subnets = _mapping(doc.get("subnets"))
    if subnets.get("own"):
        lines.append(f"  gateway for: {', '.join(map(str, subnets['own']))}")
    exit_node = _mapping(doc.get("exitNode"))
    if exit_node.get("offers"):
        lines.append("  exit node for the mesh")
    if exit_node.get("uses"):
        state = "in use" if exit_node.get("active") else "not reached: own default route"
        lines.append(f"  internet through exit node {exit_node['uses']} ({state})")
    if doc.get("mobile") is not None:
        active = ", ".join(map(str, _mapping(doc["mobile"]).get("active") or [])) or "none"
        lines.append(f"  mode mobile: direct paths only with traffic (now with: {active})")
    return lines + _faults(doc)


def _subnets(doc: dict[str, Any]) -> list[str]:
    """The subnets this node routes to their gateways, and those it refuses, with why."""
    subnets = _mapping(doc.get("subnets"))
    lines = []
    for r in subnets.get("routes") or []:
        if isinstance(r, dict):
            lines.append(f"  {_text(r.get('subnet'))} via {_text(r.get('via'))} ({_text(r.get('path'))})")
    for r in subnets.get("refused") or []:
        if isinstance(r, dict):
            what = f"{_text(r.get('subnet'))} of {_text(r.get('node'))}"
            lines.append(f"  refused: {what}: {_text(r.get('reason'))}")
    return ["", "subnets:", *lines] if lines else []


def _faults(doc: dict[str, Any]) -> list[str]:
    """One line per thing that is or was wrong: the data plane, DNS names, status clients."""
    lines = []
    plane = doc.get("dataPlane")
    if isinstance(plane, dict) and (plane.get("state") != "up" or plane.get("restores")):
        text = f"  data plane: {_text(plane.get('state'))}"
        if plane.get("state") != "up":
            text += f" for {_text(plane.get('downFor'))} s ({_text(plane.get('problem'))})"
        lines.append(text + f", restored {_text(plane.get('restores'))} time(s)")
    if isinstance(plane, dict) and plane.get("gateway"):
        lines.append(f"  {plane['gateway']}")
    resolve = doc.get("resolve")
    for name, entry in sorted(resolve.items()) if isinstance(resolve, dict) else ():
        if isinstance(entry, dict) and entry.get("error"):
            kept = f"keeping {entry['address']}" if entry.get("address") else "no address yet"
            lines.append(f"  {name}: {_text(entry.get('host'))} does not resolve ({entry['error']}); {kept}")
    sockets = doc.get("statusSocket")
    if isinstance(sockets, dict) and sockets.get("dropped"):
        lines.append(f"  status clients dropped (too slow to read): {sockets['dropped']}")
    return lines


def _row(peer: dict[str, Any], now: float) -> tuple[str, ...]:
    return (
        _text(peer.get("name")),
        _text(peer.get("wgIp")),
        _text(peer.get("path")),
        _text(peer.get("gateway")),
        _text(peer.get("endpoint")),
        format_age(peer.get("lastHandshake"), now),
        format_bytes(peer.get("rxBytes")),
        format_bytes(peer.get("txBytes")),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    table = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(width) if column in RIGHT_ALIGNED else cell.ljust(width)
            for cell, width, column in zip(row, widths, COLUMNS)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def render(doc: dict[str, Any], now: float) -> str:
    """The whole status as text, ending with a newline."""
    if "error" in doc and "name" not in doc:
        return f"error: {doc['error']}\n"
    lines = _header(doc)
    peers = [p for p in doc.get("peers") or [] if isinstance(p, dict)]
    lines.append("")
    if peers:
        lines.extend(_table([_row(p, now) for p in sorted(peers, key=_ip_order)]))
    else:
        lines.append("no peers known yet")
    leaves = [leaf for leaf in doc.get("leaves") or [] if isinstance(leaf, dict)]
    if leaves:  # agent-less WireGuard peers: the same columns, their home as the gateway
        lines += ["", "leaves:", *_table([_row(leaf, now) for leaf in sorted(leaves, key=_ip_order)])]
    lines.extend(_subnets(doc))
    return "\n".join(lines) + "\n"
