"""Data-limited mobile nodes (`mode: mobile`): a laptop on a metered link, a phone.

Idle, such a node sends one small datagram every `HELLO_EVERY` seconds to one static node
(its home), and nothing else:

- It talks to one home (`Params.homes` 1), and once its WireGuard peer for the home has
  completed a handshake, its HELLOs go *through the tunnel*, to the home's wgIp: the one
  WireGuard datagram keeps the tunnel's NAT mapping open, tells the home we are alive, and
  carries what the control channel needs (`HubLink.tunneled`). A tunneled HELLO unanswered
  for `hublink.RESOLVE_QUIET` falls back to the home's public address.
- WireGuard's persistent keepalive to the home is `KEEPALIVE`, longer than `HELLO_EVERY`: it
  never fires while the HELLOs go, and keeps the mapping if they stop being tunneled.
- The home sends it no keepalive and gives it `MEMBER_TIMEOUT` (two HELLOs lost) instead of
  its members' 10 s; the node gives the home `HUB_TIMEOUT`.
- No direct path (no LAN PROBE, no hole punching) to a peer until there is traffic with it:
  the shell tells the core which mesh addresses had traffic in the last `ACTIVE_FOR` seconds
  (`Node.set_active`; the daemon reads them from an nftables set the kernel updates, see
  io/activity.py). The node names those peers in its NodeInfo (`wishes`); a peer probes a
  mobile node only while it is named there, so the path is tried from both ends at once. The
  first packets go through the home at once; the path turns direct within about the time a
  direct path takes anywhere, and goes back to idle `ACTIVE_FOR` after the traffic stops.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Optional

from .nodeinfo import MAX_WISHES, NodeInfo

if TYPE_CHECKING:
    from .params import Params

HELLO_EVERY = 25.0  # seconds between a settled mobile node's HELLOs
KEEPALIVE = 30  # WireGuard's persistent keepalive toward the home (a safety net)
HUB_TIMEOUT = 60.0  # the home neither heard nor answering this long is gone
MEMBER_TIMEOUT = 65.0  # a home drops a mobile member neither heard nor saying HELLO this long
ACTIVE_FOR = 30.0  # seconds traffic with a peer keeps it active (the nftables set's timeout)


def params(p: Params) -> Params:
    """`p` for a mobile node."""
    return replace(
        p,
        mobile=True,
        homes=1,
        idle_heartbeat=HELLO_EVERY,
        static_keepalive=KEEPALIVE,
        hub_timeout=HUB_TIMEOUT,
    )


def wishes(active: Collection[IPv4Address], view: Mapping[str, NodeInfo]) -> tuple[IPv4Address, ...]:
    """The peers in view we have traffic with and would have a direct path to: not static
    nodes (reached on their own endpoints anyway), at most MAX_WISHES, lowest first."""
    if not active:
        return ()
    peers = {info.wg_ip for info in view.values() if not info.static}
    return tuple(sorted(ip for ip in active if ip in peers)[:MAX_WISHES])


def may_probe(mobile: bool, own_ip: IPv4Address, active: Collection[IPv4Address], peer: NodeInfo) -> bool:
    """Whether a direct path to `peer` may be tried now: by a mobile node only to a peer it
    has traffic with; to a mobile peer only while it names us."""
    if mobile and peer.wg_ip not in active:
        return False
    return not peer.mobile or own_ip in peer.wishes


def status(
    p: Params, wishes: tuple[IPv4Address, ...], view: Mapping[str, NodeInfo]
) -> Optional[dict[str, Any]]:
    """The status document's "mobile" (None: not a mobile node): the peers it has traffic
    with and would have direct paths to, by name."""
    if not p.mobile:
        return None
    names = {info.wg_ip: info.name for info in view.values()}
    return {"active": [names.get(ip, str(ip)) for ip in wishes]}
