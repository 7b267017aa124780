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
from ipaddress import IPv4Address, IPv4Interface
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
    probe_timeout: float = 11.0  # > 2 x WireGuard's 5 s handshake retry: three attempts fit
    retry_min: float = 10.0
    retry_max: float = 120.0
    dead_after: float = 6.0  # no rx for this long on an up path (keepalive is 2 s)
    keepalive: int = 2
    lan_wait: float = 0.4  # how long PROBEs to a peer on our subnet get before we try NAT
    settle: float = 1.0  # wait after a peer appears before the first attempt


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
    first_seen: Optional[float] = None
    mine: list[IPv4Interface] = field(default_factory=list)  # our own local addresses
    baseline_rx: int = 0
    decide_at: float = 0.0  # when to pick an endpoint if no PROBE was answered
    generation: int = 0  # bumped per attempt: the backend re-creates the WireGuard peer
    _classified: Optional[tuple[Endpoint, NodeInfo, list[IPv4Interface]]] = field(
        default=None, repr=False, compare=False
    )  # what `kind` was last classified from

    # --- inputs ---------------------------------------------------------------------------

    def start(self, now: float, nonce: int, stats: Optional[PeerStats], mine: list[IPv4Interface]) -> None:
        self.state = State.PROBING
        self.generation += 1
        self.mine = list(mine)
        self.since = now
        self.nonce = nonce
        self.baseline_handshake = stats.last_handshake if stats else 0.0
        self.baseline_rx = stats.rx_bytes if stats else 0
        self.probe_targets = lan_candidates(self.peer, mine)
        self.probes_left = self.timing.probe_count if self.probe_targets else 0
        self.next_probe = now
        self.endpoint = None
        # A peer on one of our own subnets is probably on our LAN: give the PROBEs a moment
        # before WireGuard is pointed anywhere, because a handshake sent to the wrong place
        # holds the next one back for WireGuard's 5 s retry.
        self.decide_at = now + (self.timing.lan_wait if self._same_lan(self.probe_targets) else 0.0)
        self._decide(now)

    def _same_lan(self, targets: list[Endpoint]) -> bool:
        return any(any(IPv4Address(t.host) in m.network for m in self.mine) for t in targets)

    def peer_locals_as_targets(self) -> list[Endpoint]:
        return [Endpoint(str(a.ip), self.peer.wg_port) for a in self.peer.locals]

    def _decide(self, now: float) -> None:
        if self.endpoint is None and now >= self.decide_at:
            self.endpoint = self.peer.endpoint
            if self.endpoint is None and self.probe_targets:
                self.endpoint = Endpoint(self.probe_targets[0].host, self.peer.wg_port)
            self.since = now

    def probe_answered(self, src: Endpoint) -> None:
        """A PROBE_ACK with our nonce came back from `src` (a local address of the peer)."""
        if self.state == State.PROBING and any(t.host == src.host for t in self.probe_targets):
            if self.endpoint is None:
                self.since = self.decide_at
            self.endpoint = Endpoint(src.host, self.peer.wg_port)
            self.probes_left = 0

    def update(self, now: float, stats: Optional[PeerStats]) -> None:
        rx = stats.rx_bytes if stats else 0
        if rx != self.last_rx:
            self.last_rx, self.last_rx_change = rx, now
        if self.state == State.PROBING:
            self._decide(now)
            # Anything WireGuard received from the peer proves the path (it is authenticated);
            # a responder only records its handshake once the first keepalive arrives.
            if stats and (
                stats.last_handshake > self.baseline_handshake or stats.rx_bytes > self.baseline_rx
            ):
                self.state = State.UP
                self.since = now
                self.retry_delay = 0.0
                self.last_rx_change = now
                self.kind = self._classify(stats.endpoint or self.endpoint)
            elif now - self.since > self.timing.probe_timeout:
                self._down(now, stats)
        elif (
            self.state == State.DOWN
            and stats
            and (stats.last_handshake > self.baseline_handshake or stats.rx_bytes > self.baseline_rx)
        ):
            # The other side's attempt got through after we gave up on ours.
            self.state, self.since, self.last_rx_change = State.UP, now, now
            self.kind = self._classify(stats.endpoint)
        elif self.state == State.UP:
            if stats and stats.endpoint:
                # Runs every tick: classify again only when something it depends on changed.
                last = self._classified
                if (
                    last is None
                    or last[0] != stats.endpoint
                    or last[1] is not self.peer
                    or last[2] is not self.mine
                ):
                    self._classified = (stats.endpoint, self.peer, self.mine)
                    self.kind = self._classify(stats.endpoint)
            if now - self.last_rx_change > self.timing.dead_after:
                self._down(now, stats)

    def _down(self, now: float, stats: Optional[PeerStats] = None) -> None:
        self.state = State.DOWN
        if stats is not None:
            self.baseline_handshake, self.baseline_rx = stats.last_handshake, stats.rx_bytes
        self.kind = PathKind.NONE
        self.retry_delay = min(max(self.retry_delay * 2, self.timing.retry_min), self.timing.retry_max)
        self.retry_at = now + self.retry_delay

    def _classify(self, ep: Optional[Endpoint]) -> PathKind:
        observed = self.peer.endpoint.host if self.peer.endpoint else None
        # A public node's local address is also its observed one: that is not a LAN path.
        if (
            ep is not None
            and ep.host != observed
            and any(
                str(a.ip) == ep.host and any(a.ip in m.network for m in self.mine) for a in self.peer.locals
            )
        ):
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

    def restart(self) -> None:
        self.state = State.IDLE

    def wants_retry(self, now: float) -> bool:
        if self.first_seen is None:
            self.first_seen = now
        # Give the peer a moment to add us to its WireGuard: a handshake it drops costs a
        # 5 s WireGuard retry.
        if now - self.first_seen < self.timing.settle:
            return False
        if self.peer.endpoint is None and not self._same_lan(self.peer_locals_as_targets()):
            return False  # nothing worth a try before a static node has seen where it is
        return self.state == State.IDLE or (self.state == State.DOWN and now >= self.retry_at)

    @property
    def is_up(self) -> bool:
        return self.state == State.UP

    def wg_endpoint(self) -> Optional[Endpoint]:
        """Endpoint to configure; None once up, so WireGuard's own roaming is not undone."""
        return self.endpoint if self.state == State.PROBING else None

    def wg_keepalive(self) -> int:
        # Turning the keepalive on makes WireGuard start a handshake at once: only do it
        # once there is an endpoint to send it to.
        if self.state == State.UP or (self.state == State.PROBING and self.endpoint is not None):
            return self.timing.keepalive
        return 0


def lan_candidates(peer: NodeInfo, mine: list[IPv4Interface]) -> list[Endpoint]:
    """The peer's local addresses, those in one of our own subnets first."""
    same = [a for a in peer.locals if any(a.ip in m.network for m in mine)]
    other = [a for a in peer.locals if a not in same]
    return [Endpoint(str(a.ip), peer.wg_port) for a in same + other]
