"""The status document (`wg_netmanager status --json`): what a node says of itself.

A pure function of the node's state at one instant: this node, its peers and how each is
reached (desired.routes), its drops, its shared keys, and the static nodes it is configured
with (but itself) and whether each answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from typing import Any

from .desired import Route
from .hublink import HubLink
from .messages import NodeInfo
from .model import PeerStats
from .params import Params, b64
from .subnets import SubnetPlan
from .wire import Codec


def peer_status(
    by_name: Sequence[tuple[str, NodeInfo]],
    route: Mapping[str, Route],
    view: Mapping[str, NodeInfo],
    stats: Mapping[str, PeerStats],
) -> list[dict[str, Any]]:
    """The `peers` of the status document, by name."""
    peers = []
    for key, info in by_name:
        kind, gw = route[key]
        st = stats.get(key)
        peers.append(
            {
                "name": info.name,
                "wgIp": str(info.wg_ip),
                "publicKey": key,
                "path": kind.value,
                "gateway": view[gw].name if gw and gw in view else None,
                "endpoint": str(st.endpoint) if st and st.endpoint else None,
                "lastHandshake": st.last_handshake if st else 0.0,
                "rxBytes": st.rx_bytes if st else 0,
                "txBytes": st.tx_bytes if st else 0,
                "subnets": [str(n) for n in info.subnets],
            }
        )
    return peers


def subnet_status(
    own: Sequence[IPv4Network], plan: SubnetPlan, view: Mapping[str, NodeInfo], route: Mapping[str, Route]
) -> dict[str, Any]:
    """`subnets`: what this node routes into the mesh, the announced subnets it routes (to
    which node, on which path kind) and those it refuses, with why."""
    return {
        "own": [str(n) for n in own],
        "routes": [
            {"subnet": str(net), "via": view[key].name, "path": route[key][0].value}
            for net, key in sorted(plan.routes.items(), key=lambda kv: (view[kv[1]].name, kv[0]))
            if key in view and key in route
        ],
        "refused": [r.to_json() for r in plan.refused],
    }


def status_document(
    params: Params,
    mode: str,
    codec: Codec,
    drops: Mapping[str, int],
    peers: list[dict[str, Any]],
    view: Mapping[str, NodeInfo],
    links: Mapping[str, HubLink],
    now: float,
) -> dict[str, Any]:
    """The whole document: `peers` as `peer_status` gives them, `view` the nodes in view by
    public key, `links` the static nodes by configured name."""
    shared_id, previous_id = codec.key_ids()

    def name_of(key: bytes) -> str:
        info = view.get(b64(key))
        return info.name if info else b64(key)

    return {
        "name": params.name,
        "wgIp": str(params.wg_ip),
        "publicKey": params.public_key,
        "static": params.is_static,
        "mode": mode,
        "rotating": codec.rotating,
        # Which shared keys it runs, by frame.key_id (the previous one: None unless rotating).
        "sharedKeyId": shared_id,
        "previousKeyId": previous_id,
        "onPreviousKey": sorted(name_of(k) for k in codec.on_previous()),
        "converged": bool(peers) and all(peer["path"] != "none" for peer in peers),
        "drops": dict(drops),
        "staticNodes": {
            name: {
                "wgIp": str(link.cfg.wg_ip),
                "address": link.address,
                "up": link.alive(now, params.hub_timeout),
            }
            | ({"tunneled": True} if link.tunneled else {})  # a mobile node's HELLOs (mobile.py)
            for name, link in sorted(links.items())
        },
        "peers": peers,
    }
