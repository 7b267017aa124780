"""One static node as this node, its client, sees it: its configuration (`StaticNode`) and
its link (`HubLink`).

A link holds the static node's key and epoch (pinned in the configuration, or learnt from its
first KEY_RESP and kept while it answers), the cookie it gave us for our address, what it
said of itself (its HELLO_ACK), the node table it serves (whole, or as deltas over the
version we hold), where to reach it (a configured address, or one the shell looked up for a
DNS name), and when it last answered. links.py holds the links to all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Optional

from . import messages as m
from .messages import NodeInfo
from .model import Endpoint

HANDSHAKE_SETTLE = 0.3  # seconds the static node gets to configure its WireGuard for us
# A new run's WireGuard peer is made again up to this many times, HANDSHAKE_SETTLE, 3x and 7x
# it after its first answer, until its WireGuard peer has received something: the static node
# answers our HELLO before its WireGuard holds us, and a handshake it drops meanwhile (our
# first, sent at once when traffic waits) would be tried again only after 5 s. The first try
# is skipped while that peer has sent nothing (tx == 0): no handshake of ours was dropped, and
# the keepalive, turned on at that moment, starts the first one (HubLink.renew_due).
RENEW_TRIES = 3
RESOLVE_QUIET = 2.0  # seconds a HELLO stays unanswered before the node may have moved
# Seconds the table of a static node's previous run is held after it restarted: its new run
# knows only the members that said HELLO again, and the others' direct paths must not be torn
# down meanwhile (they HELLO within an idle heartbeat, 10 s, and a KEYREQ round).
RESTART_HOLD = 20.0


@dataclass(frozen=True)
class StaticNode:
    """A static node as configured. The core sees addresses only: a DNS name is the shell's
    to look up (`address` None), when `StaticLinks.resolve_due` says so."""

    name: str
    wg_ip: IPv4Address
    address: Optional[str]  # configured IPv4 of its endpoint; None: a DNS name
    wg_port: int
    admin_port: int
    # False: listed without a name (the original tool's list form); it is known by its wgIp
    # and answers under whatever name it runs with.
    named: bool = True
    public_key: Optional[bytes] = None  # pinned: only this key may answer for it


@dataclass
class HubLink:
    """This node's view of one static node (as a client)."""

    cfg: StaticNode
    address: Optional[str] = None  # where it is: cfg.address, or what its name resolved to
    resolved_at: Optional[float] = None  # when the shell last looked its name up (None: never)
    key: Optional[bytes] = None  # its public key: pinned, or learnt from its KEY_RESP
    epoch: int = 0  # its run, as its KEY_RESP said (0: ask with a KEYREQ)
    cookie: bytes = b""  # its cookie for our key and address, shown in every HELLO
    nonce: int = 0  # of the KEYREQ we wait an answer to (0: none)
    asked: int = 0  # KEYREQs sent (while rotating they go in each shared key in turn)
    acked: bytes = b""  # digest of our NodeInfo it holds (its HELLO_ACK said): HELLOs omit it
    asked_since: Optional[float] = None  # since when we talk to it (None: not one of ours)
    info: Optional[NodeInfo] = None
    last_ack: float = -1e9
    last_rx: float = -1e9  # when its WireGuard peer last received something (authenticated)
    rx_bytes: Optional[int] = None  # that peer's counter as last read (None: not read yet)
    tx_bytes: int = 0  # and what it sent
    hello_out: Optional[float] = None  # when the oldest HELLO not answered yet went out
    served: int = 0  # the version of its table its last answer named
    # Bumped when we move: its WireGuard peer is made again, whose first handshake (sent at
    # once) tells its WireGuard where we are now, instead of the next keepalive. Bumped too
    # after a first answer (first contact, a new run, or back from a silence) while its
    # WireGuard peer has heard nothing since, HANDSHAKE_SETTLE after (RENEW_TRIES): after a
    # restart, or a silence longer than its member timeout, our WireGuard still holds a
    # session the static node's WireGuard no longer has, and would not start a handshake
    # until it gives up on it (15 s); on a first contact, our first handshake may have come
    # before the static node's WireGuard held us (5 s until WireGuard tries again).
    # The backend keeps a peer whose handshake is fresh (model.HANDSHAKE_HOLD).
    generation: int = 0
    renew_left: int = 0  # bumps of `generation` still to come for this run (see renew_due)
    first_ack: Optional[float] = None  # of the current run of answers
    version: int = 0  # version of its table we hold
    table: dict[str, NodeInfo] = field(default_factory=dict)  # by public key
    previous: dict[str, NodeInfo] = field(default_factory=dict)  # of its previous run, held
    previous_until: float = -math.inf  # until when `previous` is held
    pending: dict[int, m.TableChunk] = field(default_factory=dict)
    pending_version: tuple[int, int] = (0, 0)  # (version, base) of the chunks in `pending`
    shape: tuple[bool, int, bool] = (False, 0, False)  # (alive, keepalive, holding) at the last tick
    tunneled: bool = False  # a mobile node's HELLOs go through WireGuard, to its wgIp (mobile.py)

    def alive(self, now: float, timeout: float) -> bool:
        """Heard within `timeout`: an answer, or anything its WireGuard sent us."""
        return now - max(self.last_ack, self.last_rx) <= timeout

    def quiet(self, now: float) -> bool:
        """It never answered, or a HELLO has gone unanswered for RESOLVE_QUIET: it may have
        restarted (ask for its run again) or moved (look its name up again)."""
        if self.last_ack < 0:
            return True
        return self.hello_out is not None and now - self.hello_out >= RESOLVE_QUIET

    def in_step(self, digest: bytes) -> bool:
        """Nothing to tell it or to learn from it: we know its run, it holds our NodeInfo as
        `digest` names it, and we hold the table version it serves."""
        known = self.key is not None and bool(self.epoch)
        return known and self.acked == digest and self.version >= self.served

    def settled(self, digest: bytes, now: float, timeout: float) -> bool:
        """In step, alive, and our HELLOs answered."""
        return self.hello_out is None and self.in_step(digest) and self.alive(now, timeout)

    def heard(self, rx_bytes: int, now: float, tx_bytes: int = 0) -> None:
        """Its WireGuard peer's counters as read now. A smaller one is a peer made again
        (counting from 0), not something heard."""
        if self.rx_bytes is not None and rx_bytes > self.rx_bytes:
            self.last_rx = now
        self.rx_bytes, self.tx_bytes = rx_bytes, tx_bytes

    def keepalive(self, now: float, keepalive: int) -> int:
        """Keepalive toward the static node; it starts the handshake, so hold it back until
        the static node has had a moment to add us to its WireGuard (a handshake it drops
        costs WireGuard's 5 s retry)."""
        if self.first_ack is None or now - self.first_ack < HANDSHAKE_SETTLE:
            return 0
        return keepalive

    def wg_endpoint(self, info: NodeInfo) -> Optional[Endpoint]:
        """Its WireGuard endpoint: where we reach it, else what it says of itself."""
        return info.endpoint if self.address is None else Endpoint(self.address, self.cfg.wg_port)

    def admin(self) -> Optional[Endpoint]:
        return None if self.address is None else Endpoint(self.address, self.cfg.admin_port)

    def tunnel_up(self, now: float, timeout: float) -> bool:
        """Its WireGuard peer has received since this run of answers began (a handshake went
        through), within `timeout`, and our HELLOs are answered: a HELLO through the tunnel
        gets there."""
        if self.first_ack is None or self.last_rx < self.first_ack or now - self.last_rx > timeout:
            return False
        return not self.quiet(now)

    def hello_to(self) -> Optional[Endpoint]:
        """Where HELLOs go: its control port, through the tunnel while `tunneled`."""
        if self.tunneled:
            return Endpoint(str(self.cfg.wg_ip), self.cfg.admin_port)
        return self.admin()

    def key_resp(self, key: bytes, epoch: int, cookie: bytes, now: float, hub_timeout: float) -> bool:
        """The answer to our KEYREQ, proven to come from `key`. False: refused, since the
        link's key is pinned to another, or another key holds the link and still answers
        (a learnt key is given up only once its node has been silent for `hub_timeout`)."""
        if self.key is not None and key != self.key:
            if self.cfg.public_key is not None or self.alive(now, hub_timeout):
                return False
            self.info, self.acked = None, b""  # a new node answers for it: nothing of the old stays
        if epoch != self.epoch:
            self._restarted(now)
        self.key, self.epoch, self.cookie, self.nonce = key, epoch, cookie, 0
        return True

    def _restarted(self, now: float) -> None:
        # A restarted static node counts its table versions from 1 again: what we hold says
        # nothing about its new ones. Version 0 in our HELLO asks for the table. What its
        # previous run served is held a while (RESTART_HOLD), behind what the new one serves.
        if self.table:
            self.previous, self.previous_until = self.table, now + RESTART_HOLD
        self.version, self.first_ack, self.acked, self.table = 0, None, b"", {}

    def forgotten(self, now: float) -> None:
        """It answered that it holds nothing of us (its member timeout passed while we were
        away): it adds us, and its WireGuard peer for us, anew (see `generation`)."""
        self.first_ack, self.renew_left = now, RENEW_TRIES

    def stopped(self, now: float) -> None:
        """It said LEAVE (it stops): not alive from now on, and quiet, so the next heartbeat
        asks for its run. What it served stays, as for any static node gone silent."""
        self.last_ack = self.last_rx = -1e9
        self.hello_out = now - RESOLVE_QUIET
        self.renew_left = 0  # its next run's peer is made again, not this one's

    def went_silent(self, now: float) -> None:
        """Neither heard nor answering for the hub timeout: it may have restarted (a crash says
        no LEAVE), so the next heartbeat, at once, asks for its run."""
        if self.hello_out is None or self.hello_out > now - RESOLVE_QUIET:
            self.hello_out = now - RESOLVE_QUIET

    def renew_at(self) -> float:
        """When its WireGuard peer is next to be made again (see `generation`)."""
        if not self.renew_left or self.first_ack is None:
            return math.inf
        done = RENEW_TRIES - self.renew_left
        return self.first_ack + HANDSHAKE_SETTLE * (2 ** (done + 1) - 1)

    def renew_due(self, now: float) -> bool:
        """Whether to make its WireGuard peer again now; bumps `generation`."""
        if now < self.renew_at():
            return False
        assert self.first_ack is not None
        if self.last_rx >= self.first_ack:  # a handshake with this run went through
            self.renew_left = 0
            return False
        first, self.renew_left = self.renew_left == RENEW_TRIES, self.renew_left - 1
        if first and not self.tx_bytes:
            return False  # it has sent nothing yet: the keepalive, on now, starts the handshake
        self.generation += 1
        return True

    def held(self, now: float) -> dict[str, NodeInfo]:
        """Its previous run's table while it is held, else nothing."""
        if now >= self.previous_until:
            self.previous = {}
            return {}
        return self.previous

    def ack(self, info: NodeInfo, epoch: int, now: float, hub_timeout: float) -> None:
        """A HELLO_ACK, proven to come from the link's key (in its run `epoch`)."""
        if self.epoch != epoch:
            self._restarted(now)
        if self.first_ack is None or not self.alive(now, hub_timeout):
            # A first answer: of a new run, or after a silence in which it may have dropped
            # our WireGuard peer (its member timeout). Its WireGuard may not hold us yet.
            self.first_ack = now
            self.renew_left = RENEW_TRIES
        self.info, self.epoch, self.last_ack, self.hello_out = info, epoch, now, None

    def chunk(self, msg: m.TableChunk) -> bool:
        """One chunk of a table or delta; True when it completed one and the table changed."""
        if (msg.version, msg.base) != self.pending_version:
            self.pending, self.pending_version = {}, (msg.version, msg.base)
        self.pending[msg.index] = msg
        if len(self.pending) < msg.count or any(c.count != msg.count for c in self.pending.values()):
            return False
        chunks = [self.pending[i] for i in range(msg.count)]
        self.pending, self.pending_version = {}, (0, 0)
        if msg.base == 0:
            if msg.version <= self.version:
                return False  # an older table, late (reordered or replayed within the run)
            self.table = {e.public_key: e for c in chunks for e in c.entries}
        elif msg.base == self.version:
            table = dict(self.table)
            for c in chunks:
                for key in c.removed:
                    table.pop(key, None)
            for c in chunks:
                table.update((e.public_key, e) for e in c.entries)
            self.table = table
        else:
            return False  # changes to a version we do not hold; our next HELLO says which we do
        self.version = msg.version
        return True
