"""Addresses, links, routes and forwarding through pyroute2 (no `ip` subprocesses).

Everything acts on the network namespace of the calling process (the agent runs inside the
node's namespace), including /proc/sys/net, which is per namespace.

Interface address: the wgIp gets the mesh prefix (10.1.1.1/24), not /32. The connected /24
route then sends every mesh address into WireGuard, whose AllowedIPs pick the peer; an address
no peer has yet is dropped there (fails closed) instead of leaking to the default route. So
the core asks for no per-peer routes; `sync_routes` serves routes outside the subnet (and
removes per-peer /32s an earlier version installed: they carry our protocol number).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from socket import AF_INET
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from .base import BackendError

log = logging.getLogger(__name__)

# Routes we install carry this protocol number, so a restarted agent finds exactly its own
# routes and never touches anyone else's. Unassigned in iproute2's rt_protos.
RTPROT_WG_NETMANAGER = 158
MAIN_TABLE = 254
SCOPE_LINK = 253
SCOPE_NOWHERE = 255  # in a delete request: match any scope (what `ip route del` sends)
SCOPE_UNIVERSE = 0
IFF_UP = 0x1
IFF_LOOPBACK = 0x8

PROC_IPV4 = Path("/proc/sys/net/ipv4")
SYS_NET = Path("/sys/class/net")


@contextmanager
def _iproute() -> Iterator[Any]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def link_index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _require_index(ipr: Any, ifname: str) -> int:
    idx = link_index(ipr, ifname)
    if idx is None:
        raise BackendError(f"interface {ifname} does not exist")
    return idx


def link_exists(ifname: str) -> bool:
    with _iproute() as ipr:
        return link_index(ipr, ifname) is not None


RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10


def address_doorbell() -> socket.socket | None:
    """A netlink socket that turns readable when an IPv4 address or a link changes, so the
    addresses need not be polled every second. Its messages are only a doorbell (the caller
    drains them and reads `local_addresses` again); None where rtnetlink is missing."""
    try:
        kind = socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        sock = socket.socket(socket.AF_NETLINK, kind, socket.NETLINK_ROUTE)
    except (OSError, AttributeError):
        return None
    try:
        sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
    except OSError:
        sock.close()
        return None
    return sock


def local_addresses(exclude: str) -> list[IPv4Interface]:
    """Global-scope IPv4 addresses of up, non-loopback interfaces other than `exclude`.

    Read every second, so only the address dump goes through netlink: decoding pyroute2's
    link dump costs ~3 ms of CPU, four times the addresses. Loopback addresses have host
    scope; whether an interface is up comes from sysfs.
    """
    with _iproute() as ipr:
        msgs = list(ipr.get_addr(family=AF_INET))
    names: dict[int, str | None] = {}
    result = []
    for msg in msgs:
        if msg["scope"] != SCOPE_UNIVERSE:
            continue
        idx = msg["index"]
        if idx not in names:
            names[idx] = _usable_name(idx, exclude)
        if names[idx] is not None:
            result.append(IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"))
    return result


def interfaces_on(subnets: tuple[IPv4Network, ...], exclude: str) -> set[str]:
    """Names of the interfaces other than `exclude` with an address on one of `subnets`."""
    if not subnets:
        return set()
    with _iproute() as ipr:
        msgs = list(ipr.get_addr(family=AF_INET))
    found = set()
    for msg in msgs:
        net = IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}").network
        if msg["scope"] == SCOPE_UNIVERSE and any(net.overlaps(s) for s in subnets):
            try:
                name = socket.if_indextoname(msg["index"])
            except OSError:
                continue  # gone meanwhile
            if name != exclude:
                found.add(name)
    return found


def default_interfaces(exclude: str) -> set[str]:
    """Names of the interfaces other than `exclude` that the main table's default routes use."""
    with _iproute() as ipr:
        msgs = [m for m in ipr.get_routes(family=AF_INET, table=MAIN_TABLE) if m["dst_len"] == 0]
    found = set()
    for msg in msgs:
        oif = msg.get_attr("RTA_OIF")
        try:
            name = socket.if_indextoname(oif) if oif else None
        except OSError:
            continue
        if name and name != exclude:
            found.add(name)
    return found


def _usable_name(index: int, exclude: str) -> str | None:
    """The interface's name if it is up, not loopback and not `exclude`; else None."""
    try:
        name = socket.if_indextoname(index)
    except OSError:
        return None  # gone meanwhile
    if name == exclude:
        return None
    try:
        flags = int((SYS_NET / name / "flags").read_text(), 16)
    except (OSError, ValueError):
        return name  # no sysfs (some containers): the address is there, count it
    return name if flags & IFF_UP and not flags & IFF_LOOPBACK else None


def set_address(ifname: str, address: IPv4Interface, exclusive: bool = True) -> None:
    """Give `ifname` this IPv4 address; with `exclusive`, remove its other IPv4 addresses."""
    with _iproute() as ipr:
        idx = _require_index(ipr, ifname)
        present = False
        for msg in ipr.get_addr(family=AF_INET, index=idx):
            have = IPv4Interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
            if have == address:
                present = True
            elif exclusive:
                log.info("removing old address %s from %s", have, ifname)
                ipr.addr(
                    "del",
                    index=idx,
                    address=str(have.ip),
                    prefixlen=have.network.prefixlen,
                )
        if not present:
            ipr.addr(
                "add",
                index=idx,
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
            )


def set_link_up(ifname: str, up: bool = True) -> None:
    with _iproute() as ipr:
        ipr.link("set", index=_require_index(ipr, ifname), state="up" if up else "down")


def delete_link(ifname: str) -> None:
    with _iproute() as ipr:
        idx = link_index(ipr, ifname)
        if idx is not None:
            ipr.link("del", index=idx)


def create_link(ifname: str, kind: str) -> None:
    with _iproute() as ipr:
        try:
            ipr.link("add", ifname=ifname, kind=kind)
        except NetlinkError as exc:
            raise BackendError(f"cannot create {kind} interface {ifname}: {exc.args[-1]}") from None


def _our_routes(ipr: Any, idx: int) -> dict[IPv4Network, str | None]:
    """Our routes via link `idx`, with their preferred source address."""
    routes = {}
    for msg in ipr.get_routes(family=AF_INET, table=MAIN_TABLE):
        if msg["proto"] == RTPROT_WG_NETMANAGER and msg.get_attr("RTA_OIF") == idx:
            net = IPv4Network(f"{msg.get_attr('RTA_DST') or '0.0.0.0'}/{msg['dst_len']}")
            routes[net] = msg.get_attr("RTA_PREFSRC")
    return routes


def sync_routes(
    ifname: str, wanted: set[IPv4Network], source: IPv4Address | None = None
) -> tuple[set[IPv4Network], set[IPv4Network]]:
    """Make our routes via `ifname` exactly `wanted`; returns (added, removed).

    `source` (the wgIp) becomes each route's preferred source. Without it the kernel picks
    the interface's primary address, which on an adopted interface may be one the peers'
    AllowedIPs do not accept. A route with the wrong source is replaced (in both sets).
    """
    src = str(source) if source is not None else None
    with _iproute() as ipr:
        idx = link_index(ipr, ifname)
        if idx is None:
            if wanted:
                raise BackendError(f"interface {ifname} does not exist")
            return set(), set()
        have = _our_routes(ipr, idx)
        stale = {net for net, prefsrc in have.items() if net not in wanted or prefsrc != src}
        added, removed = set(), set()
        for net in sorted(stale):
            try:
                ipr.route(
                    "del",
                    dst=str(net),
                    oif=idx,
                    proto=RTPROT_WG_NETMANAGER,
                    scope=SCOPE_NOWHERE,
                    table=MAIN_TABLE,
                )
                removed.add(net)
            except NetlinkError as exc:
                if exc.code != errno.ESRCH:
                    raise BackendError(f"cannot remove route {net} via {ifname}: {exc.args[-1]}") from None
        for net in sorted(wanted - (have.keys() - stale)):
            extra = {"prefsrc": src} if src else {}
            try:
                ipr.route(
                    "add",
                    dst=str(net),
                    oif=idx,
                    proto=RTPROT_WG_NETMANAGER,
                    scope=SCOPE_LINK,
                    table=MAIN_TABLE,
                    **extra,
                )
                added.add(net)
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    # Someone else's route with the same key: leave it, it is not ours to replace.
                    log.debug("route %s exists and is not ours; leaving it", net)
                    continue
                raise BackendError(f"cannot add route {net} via {ifname}: {exc.args[-1]}") from None
        if added or removed:
            log.info(
                "routes via %s: +%s -%s",
                ifname,
                sorted(map(str, added)),
                sorted(map(str, removed)),
            )
        return added, removed


def _write_sysctl(path: Path, value: str) -> None:
    try:
        if path.read_text().strip() != value:
            path.write_text(value + "\n")
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None


def set_forwarding(ifname: str, on: bool) -> None:
    """Let packets received on `ifname` be forwarded (a gateway relays wg -> wg).

    IPv4 checks the forwarding flag of the *input* interface only, so the per-interface
    flag is enough for relaying between peers. We deliberately leave the global
    net.ipv4.ip_forward alone: writing it rewrites every interface's flag, and turning it off
    would break a host that routes for other reasons.
    """
    _write_sysctl(PROC_IPV4 / "conf" / ifname / "forwarding", "1" if on else "0")


def forwarding(ifname: str) -> bool:
    return (PROC_IPV4 / "conf" / ifname / "forwarding").read_text().strip() == "1"
