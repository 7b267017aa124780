"""Which mesh addresses a mobile node has traffic with (core/mobile.py): an nftables set the
kernel keeps, read by the shell about once a second.

One table of the agent's own, `ip wg_netmanager_mobile_IFNAME`: every packet into or out of
the WireGuard interface with a mesh address on the far side puts that address into the set
`active` (or refreshes it) for ACTIVE_FOR seconds; the kernel removes it after that. Only
packets inside the tunnel count, not WireGuard's own keepalives and handshakes or the
control channel's PROBEs, so a direct path's own upkeep does not keep it active. The table is
removed when the agent stops; a run that crashed leaves one that the next run replaces.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..core.mobile import ACTIVE_FOR
from . import nft
from .base import BackendError

log = logging.getLogger(__name__)

MAX_ACTIVE = 4096  # addresses the set holds at most (the kernel refuses more, it does not grow)
WHY = "mode mobile"


class Activity:
    def __init__(self, ifname: str, subnet: IPv4Network) -> None:
        self.ifname, self.subnet = ifname, subnet
        self.table = f"wg_netmanager_mobile_{ifname}"
        self.on = False

    def ruleset(self) -> str:
        when, net, iface = int(ACTIVE_FOR), self.subnet, self.ifname
        return nft.replace_table(
            self.table,
            "  set active {\n"
            f"    type ipv4_addr; flags dynamic,timeout; timeout {when}s; size {MAX_ACTIVE};\n"
            "  }\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            f'    oifname "{iface}" ip daddr {net} update @active {{ ip daddr }}\n'
            "  }\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f'    iifname "{iface}" ip saddr {net} update @active {{ ip saddr }}\n'
            "  }\n",
        )

    def start(self) -> None:
        nft.run_script(self.ruleset(), WHY)
        self.on = True

    def read(self) -> frozenset[IPv4Address]:
        """The addresses in the set now (BackendError if it cannot be read)."""
        doc = nft.list_json(f"set ip {self.table} active", WHY)
        return parse_set(doc, self.subnet)

    def close(self) -> None:
        if self.on:
            try:
                nft.run_script(nft.replace_table(self.table, ""), WHY)
                self.on = False
            except BackendError as exc:
                log.warning("%s", exc)


def parse_set(doc: Any, subnet: IPv4Network) -> frozenset[IPv4Address]:
    """The elements of `nft -j list set`'s answer that are addresses in `subnet`: each is a
    string, or {"elem": {"val": ADDRESS, "expires": ...}} for a set with timeouts."""
    found = set()
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    for item in items:
        elems = item.get("set", {}).get("elem", []) if isinstance(item, dict) else []
        for e in elems if isinstance(elems, list) else []:
            val = e.get("elem", {}).get("val") if isinstance(e, dict) else e
            try:
                ip = IPv4Address(val)
            except ValueError:
                continue
            if ip in subnet:
                found.add(ip)
    return frozenset(found)
