"""The PROBE exchange of the direct paths (discovery.py), as the node drives it.

`Probes` seals, for each peer's run, the PROBEs a tick's drive asks for, and takes the ones
that arrive: a PROBE is echoed as a PROBE_ACK of the same size (no amplification, whoever
the source is); a PROBE_ACK with the nonce of one of ours proves that path's endpoint.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from ipaddress import IPv4Interface
from typing import Optional

from . import messages as m
from .client import Send
from .discovery import Paths
from .messages import NodeInfo
from .model import Endpoint, PeerStats
from .params import b64, raw
from .wire import Drop, Opened


class Probes:
    def __init__(self, paths: Paths, name: str, public_key: str, send: Send) -> None:
        self.paths = paths
        self.name, self.public_key = name, public_key  # ours, as every PROBE says
        self._send = send

    def drive(
        self,
        view: Mapping[str, NodeInfo],
        stats: Mapping[str, PeerStats],
        mine: list[IPv4Interface],
        rng: random.Random,
        now: float,
        allowed: Optional[Callable[[NodeInfo], bool]] = None,
    ) -> bool:
        """Drive the paths (`Paths.drive`) and send the PROBEs it asks for; True if what
        WireGuard sees of a path changed."""
        step = self.paths.drive(view, stats, mine, rng, now, allowed)
        for dst, info, nonce in step.probes:
            self._send(m.Probe(self.name, self.public_key, nonce), dst, raw(info.public_key), info.epoch)
        return step.changed

    def received(self, now: float, msg: m.Probe, opened: Opened, src: Endpoint) -> bool:
        """A PROBE or PROBE_ACK from the proven `opened.sender`; True if it proved a path.
        Drop("rejected") for one in another's name, or an ack no PROBE of ours asked for."""
        sender = b64(opened.sender)
        if msg.public_key != sender:
            raise Drop("rejected")
        if not msg.ack:
            ack = m.Probe(self.name, self.public_key, msg.nonce, ack=True)
            self._send(ack, src, opened.sender, opened.epoch)
            return False
        path = self.paths.by_key.get(sender)
        if path is None or path.nonce != msg.nonce:
            raise Drop("rejected")
        path.probe_answered(src, now)
        self.paths.touch(sender)
        return True
