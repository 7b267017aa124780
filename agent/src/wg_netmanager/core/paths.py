"""Direct-path discovery between two non-static nodes: LAN probing and NAT hole punching.

One `DirectPath` per peer. It proposes a WireGuard endpoint for the peer and watches the
peer's handshake and receive counters (read back from WireGuard):

    idle --start--> probing --handshake seen--> up --no rx for `dead_after`--> down
                       |                                                    |
                       +--no handshake within `probe_timeout`--> down <-----+
    down --retry timer / peer info changed--> probing

While probing, WireGuard is given the peer's NAT endpoint as observed by a static node (both
sides do this at the same time, which punches the hole) and a keepalive so that it starts a
handshake at once; in parallel, PROBEs go to every local address of the peer, and the first
that answers becomes the endpoint (a LAN path beats a NAT path). The peer's traffic keeps
going through a gateway until a handshake proves the direct path.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from typing import Optional

from .messages import NodeInfo
from .model import Endpoint, PathKind, PeerStats


class State(enum.Enum):
    IDLE = "idle"
    PROBING = "probing"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Timing:
    probe_interval: float = 0.5  # between PROBEs to local addresses
    probe_count: int = 4
    probe_timeout: float = 7.0  # > WireGuard's 5 s handshake retry, so two attempts fit
    retry_min: float = 10.0
    retry_max: float = 120.0
    dead_after: float = 6.0  # no rx for this long on an up path (keepalive is 2 s)
    keepalive: int = 2


@dataclass
class DirectPath:
    peer: NodeInfo
    timing: Timing
    state: State = State.IDLE
    endpoint: Optional[Endpoint] = None  # what we tell WireGuard while probing
    kind: PathKind = PathKind.NONE
    since: float = 0.0
    retry_at: float = 0.0
    retry_delay: float = 0.0
    probes_left: int = 0
    next_probe: float = 0.0
    nonce: int = 0
    baseline_handshake: float = 0.0
    last_rx: int = -1
    last_rx_change: float = 0.0
    probe_targets: list[Endpoint] = field(default_factory=list)

    # --- inputs ---------------------------------------------------------------------------

    def start(self, now: float, nonce: int, stats: Optional[PeerStats], mine: list[IPv4Interface]) -> None:
        self.state = State.PROBING
        self.since = now
        self.nonce = nonce
        self.baseline_handshake = stats.last_handshake if stats else 0.0
        self.endpoint = self.peer.endpoint
        self.probe_targets = lan_candidates(self.peer, mine)
        if self.endpoint is None and self.probe_targets:
            self.endpoint = Endpoint(self.probe_targets[0].host, self.peer.wg_port)
        self.probes_left = self.timing.probe_count if self.probe_targets else 0
        self.next_probe = now

    def probe_answered(self, src: Endpoint) -> None:
        """A PROBE_ACK with our nonce came back from `src` (a local address of the peer)."""
        if self.state == State.PROBING and any(t.host == src.host for t in self.probe_targets):
            self.endpoint = Endpoint(src.host, self.peer.wg_port)
            self.probes_left = 0

    def update(self, now: float, stats: Optional[PeerStats]) -> None:
        rx = stats.rx_bytes if stats else 0
        if rx != self.last_rx:
            self.last_rx, self.last_rx_change = rx, now
        if self.state == State.PROBING:
            if stats and stats.last_handshake > self.baseline_handshake:
                self.state = State.UP
                self.since = now
                self.retry_delay = 0.0
                self.last_rx_change = now
                self.kind = self._classify(stats.endpoint or self.endpoint)
            elif now - self.since > self.timing.probe_timeout:
                self._down(now)
        elif self.state == State.UP:
            if stats and stats.endpoint:
                self.kind = self._classify(stats.endpoint)
            if now - self.last_rx_change > self.timing.dead_after:
                self._down(now)

    def _down(self, now: float) -> None:
        self.state = State.DOWN
        self.kind = PathKind.NONE
        self.retry_delay = min(max(self.retry_delay * 2, self.timing.retry_min), self.timing.retry_max)
        self.retry_at = now + self.retry_delay

    def _classify(self, ep: Optional[Endpoint]) -> PathKind:
        observed = self.peer.endpoint.host if self.peer.endpoint else None
        # A public node's local address is also its observed one: that is not a LAN path.
        if ep is not None and ep.host != observed and any(str(a.ip) == ep.host for a in self.peer.locals):
            return PathKind.LAN
        return PathKind.NAT

    # --- outputs --------------------------------------------------------------------------

    def due_probes(self, now: float) -> list[Endpoint]:
        """Admin-port addresses to PROBE now."""
        if self.state != State.PROBING or self.probes_left <= 0 or now < self.next_probe:
            return []
        self.probes_left -= 1
        self.next_probe = now + self.timing.probe_interval
        return [Endpoint(t.host, self.peer.admin_port) for t in self.probe_targets]

    def wants_retry(self, now: float) -> bool:
        return self.state == State.IDLE or (self.state == State.DOWN and now >= self.retry_at)

    @property
    def is_up(self) -> bool:
        return self.state == State.UP

    def wg_endpoint(self) -> Optional[Endpoint]:
        """Endpoint to configure; None once up, so WireGuard's own roaming is not undone."""
        return self.endpoint if self.state == State.PROBING else None

    def wg_keepalive(self) -> int:
        return self.timing.keepalive if self.state in (State.PROBING, State.UP) else 0


def lan_candidates(peer: NodeInfo, mine: list[IPv4Interface]) -> list[Endpoint]:
    """The peer's local addresses, those in one of our own subnets first."""
    same = [a for a in peer.locals if any(a.ip in m.network for m in mine)]
    other = [a for a in peer.locals if a not in same]
    return [Endpoint(str(a.ip), peer.wg_port) for a in same + other]
