"""Policy routing for a node that uses an exit node (core/exits.py): everything but the
tunnel's own packets goes into the WireGuard interface, as wg-quick does for 0.0.0.0/0.

The WireGuard device marks its UDP packets with MARK (fwmark) and the agent marks its control
socket the same (io/controlsock.py). Two rules: `lookup main suppress_prefixlength 0` keeps
every route more specific than the default (the LANs, the mesh subnet), and `not fwmark MARK
lookup TABLE` sends the rest to TABLE, whose one route is the default through the WireGuard
interface. Marked packets (the tunnel itself, the control channel) fall through to the main
table and its default route. Rules and route carry the agent's priority and protocol numbers,
so exactly they are removed again.
"""

from __future__ import annotations

import logging
from socket import AF_INET
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from . import netlink
from .base import EXIT_MARK, BackendError

log = logging.getLogger(__name__)

MARK = EXIT_MARK  # the fwmark of the tunnel's own packets, and the table's number
TABLE = MARK
PRIORITY = MARK  # the `not fwmark` rule; the `suppress_prefixlength` rule one before it
FIB_RULE_INVERT = 0x2


def _ours(ipr: Any) -> list[Any]:
    return [
        r for r in ipr.get_rules(family=AF_INET) if r.get_attr("FRA_PRIORITY") in (PRIORITY - 1, PRIORITY)
    ]


def sync(ifname: str, on: bool) -> None:
    """Our rules and the table's default route, present exactly while `on`."""
    try:
        with netlink._iproute() as ipr:
            rules = _ours(ipr)
            if not on:
                for r in rules:
                    ipr.rule("del", **_rule_args(r))
                _flush_table(ipr)
                return
            idx = netlink._require_index(ipr, ifname)
            ipr.route("replace", dst="0.0.0.0/0", oif=idx, table=TABLE, proto=netlink.RTPROT_WG_NETMANAGER)
            if len(rules) != 2:
                for r in rules:
                    ipr.rule("del", **_rule_args(r))
                ipr.rule("add", table=netlink.MAIN_TABLE, priority=PRIORITY - 1, suppress_prefixlen=0)
                ipr.rule(
                    "add",
                    table=TABLE,
                    priority=PRIORITY,
                    fwmark=MARK,
                    fwmask=0xFFFFFFFF,
                    flags=FIB_RULE_INVERT,
                )
                log.info("%s: internet traffic goes into the tunnel (to the exit node)", ifname)
    except NetlinkError as exc:
        raise BackendError(f"exit node routing on {ifname}: {exc.args[-1]}") from None


def _rule_args(r: Any) -> dict[str, Any]:
    return {"priority": r.get_attr("FRA_PRIORITY"), "table": r.get_attr("FRA_TABLE") or r["table"]}


def _flush_table(ipr: Any) -> None:
    for msg in ipr.get_routes(family=AF_INET, table=TABLE):
        if msg["proto"] == netlink.RTPROT_WG_NETMANAGER:
            ipr.route("del", dst="0.0.0.0/0", table=TABLE, oif=msg.get_attr("RTA_OIF"))
