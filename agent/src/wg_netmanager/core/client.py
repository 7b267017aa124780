"""This node as a client of the static nodes: what it sends them every heartbeat (a KEYREQ
where it does not know a static node's key or run, a HELLO where it does) and what it takes
from their answers (KEY_RESP, COOKIE, HELLO_ACK, table chunks), each checked against the
proven sender and the link it claims to be. The links themselves are `links.StaticLinks`;
this module only speaks for them, through the node's `send` and `send_raw`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
from collections.abc import Callable
from typing import Optional

from . import messages as m
from .hublink import HubLink
from .links import StaticLinks
from .messages import NodeInfo
from .model import Endpoint
from .wire import Codec, Drop, Opened

Send = Callable[[m.Message, Endpoint, bytes, int], None]  # message, to, key, epoch
Vouch = Callable[[NodeInfo, float], Optional[str]]  # why a claim is not believed (trust.py)
Rejected = Callable[[float, NodeInfo, Endpoint, str], None]  # log a refused claim
# A static node that has never answered is asked again after 0.1 s, then 0.2 s and 0.4 s
# (the same question: an answer to any of them counts), before the heartbeat's pace: agents
# started together reach one not listening yet within a second, not at the next heartbeat.
# Nebula's handshakes retry every 100 ms the same way. JOIN_TRIES KEYREQs at most, counting
# the heartbeat's, then one per heartbeat for a static node that is down.
JOIN_RETRY = 0.1
JOIN_TRIES = 4


class Client:
    def __init__(
        self,
        links: StaticLinks,
        codec: Codec,
        rng: random.Random,
        send: Send,
        send_raw: Callable[[bytes, Endpoint], None],
        vouch: Vouch,
        rejected: Rejected,
        hub_timeout: float,
        own_key: bytes = b"",
        homes: int = 0,
        every: tuple[float, float] = (1.0, 10.0),
        now: float = 0.0,
        tunnel: bool = False,
    ) -> None:
        self.links = links
        self.codec = codec
        self.rng = rng
        self._send, self._send_raw = send, send_raw
        self._vouch, self._rejected = vouch, rejected
        self.hub_timeout = hub_timeout
        self.homes = homes
        self.tunnel = tunnel  # a mobile node: HELLOs through the tunnel once it is up (mobile.py)
        self.every, self.idle_every = every  # heartbeat while unsettled, and once settled
        self.next_heartbeat = now
        self._answer_due = math.inf  # when the answers to an idle heartbeat's HELLOs are due
        self._retry_at, self._retry_wait = math.inf, JOIN_RETRY  # see JOIN_RETRY
        self.own_key = own_key
        self.ranked: list[HubLink] = []
        self.rank()

    def rank(self) -> None:
        """Rendezvous hashing: every node ranks the static nodes its own way, the same in
        every run, so the members spread over them and a lost one (or one added or removed by
        a reload) moves only its own."""
        self.ranked = sorted(
            self.links.by_name.values(),
            key=lambda lk: hashlib.blake2s(self.own_key + lk.cfg.wg_ip.packed, digest_size=8).digest(),
        )

    def contacted(self, now: float) -> list[HubLink]:
        """The static nodes we talk to: all of them (`homes` 0: a static node), or the first
        `homes` in our ranking that answer, trying each in turn. One that has not answered for
        `hub_timeout` since we first asked is passed over, but still asked."""
        if not self.homes:
            for link in self.ranked:
                if link.asked_since is None:
                    link.asked_since = now
            return self.ranked
        chosen, working = [], 0
        for link in self.ranked:
            if working >= self.homes:
                if link.asked_since is not None and not link.alive(now, self.hub_timeout):
                    link.asked_since = None  # not ours any more: nothing from it is kept
                continue
            chosen.append(link)
            if link.asked_since is None:
                link.asked_since = now
            if link.alive(now, self.hub_timeout) or now - link.asked_since < self.hub_timeout:
                working += 1
        return chosen

    def hello_at(self, at: float = -math.inf) -> None:
        """Say HELLO at `at` at the latest (default: at the next tick): what we say changed."""
        self.next_heartbeat = min(self.next_heartbeat, at)

    def tick(self, now: float, me: Callable[[], NodeInfo]) -> None:
        """The heartbeat: every `every` seconds while something is unsettled, every
        `idle_every` once it is not; an idle heartbeat's HELLOs unanswered after `every`
        bring the quick one back."""
        if now >= self._answer_due:
            self._answer_due = math.inf
            if not self.settled(now, me()):
                self.next_heartbeat = now
        if now >= self.next_heartbeat:
            info = me()
            settled = self.settled(now, info)  # before this HELLO, which waits for its answer
            self.heartbeat(now, info)
            self.next_heartbeat = now + (self.idle_every if settled else self.every)
            self._answer_due = now + self.every if settled else math.inf
            self._retry_at, self._retry_wait = now + JOIN_RETRY, JOIN_RETRY
        elif now >= self._retry_at:
            self._retry_wait *= 2
            self._retry_at = now + self._retry_wait
            for link in self._joining(now):
                admin = link.admin()
                if admin is not None:
                    self._send_raw(self.codec.keyreq(link.nonce, link.asked, link.cookie), admin)
                    link.asked += 1
        if self._retry_at < math.inf and (not self._joining(now) or self._retry_at >= self.next_heartbeat):
            self._retry_at = math.inf

    def _joining(self, now: float) -> list[HubLink]:
        """Static nodes we ask that never answered a KEYREQ of this burst, and few times yet."""
        return [lk for lk in self.contacted(now) if lk.nonce and lk.asked < JOIN_TRIES and lk.last_ack < 0]

    def next_deadline(self) -> float:
        return min(self.next_heartbeat, self._answer_due, self._retry_at)

    def answered(self, now: float, me: NodeInfo) -> None:
        """After an answer: if we are out of step (its table moved on, it forgot us), the
        next HELLO goes within `every`, not at the idle heartbeat."""
        if self.next_heartbeat > now + self.every and not self.in_step(now, me):
            self.next_heartbeat = now + self.every

    def heartbeat(self, now: float, me: NodeInfo) -> None:
        for link in self.contacted(now):
            admin = link.admin()
            if admin is None:
                continue
            link.tunneled = self.tunnel and link.tunnel_up(now, self.hub_timeout)
            if link.key is None or not link.epoch or link.quiet(now):
                # Its key or run is unknown, or it went quiet (restarted?): ask.
                link.nonce = self.rng.getrandbits(64) | 1
                self._send_raw(self.codec.keyreq(link.nonce, link.asked, link.cookie), admin)
                link.asked += 1
            self.hello(link, me, now)

    def settled(self, now: float, me: NodeInfo) -> bool:
        """Every static node we talk to answered, holds what we would say and serves us
        nothing we lack: the next HELLO can wait for the idle heartbeat."""
        digest = m.digest(me)
        return all(link.settled(digest, now, self.hub_timeout) for link in self.contacted(now))

    def in_step(self, now: float, me: NodeInfo) -> bool:
        """`settled` but for HELLOs still on their way (an answer came from one only)."""
        digest = m.digest(me)
        return all(link.in_step(digest) for link in self.contacted(now))

    def hello(self, link: HubLink, me: NodeInfo, now: Optional[float] = None) -> None:
        admin = link.hello_to()
        if admin is not None and link.key is not None and link.epoch:
            digest = m.digest(me)
            # Left out when it holds what we would repeat (and we have a cookie: a HELLO
            # shorter than the COOKIE it may need to send back would get no answer).
            node = None if link.acked == digest and link.cookie else me
            self._send(m.Hello(node, link.version, link.cookie, digest), admin, link.key, link.epoch)
            if now is not None and link.hello_out is None:
                link.hello_out = now  # answered: HubLink.ack

    def leave(self, name: str, public_key: str) -> None:
        for link in self.links.by_name.values():
            admin = link.hello_to()
            if admin is not None and link.key is not None and link.epoch:
                self._send(m.Leave(name, public_key), admin, link.key, link.epoch)

    def stopping(self, now: float, msg: m.Leave, opened: Opened) -> bool:
        """A LEAVE: True if a static node we talk to sent it, in its current run and for its
        own name and key. It is stopping (a restart, an upgrade, a shutdown): it counts as gone
        now, so routes move to the other static nodes at once, and its next run is asked for
        at every heartbeat from the next one on."""
        link = self.links.with_key(opened.sender)
        if link is None or link.epoch != opened.epoch or msg.public_key != _b64(opened.sender):
            return False
        if link.info is not None and link.info.name != msg.name:
            return False
        link.stopped(now)
        self.next_heartbeat = min(self.next_heartbeat, now + self.every)
        return True

    def handle(self, now: float, msg: m.Message, opened: Opened, src: Endpoint, me: NodeInfo) -> bool:
        """A static node's answer; True if what we hold of it changed (the view may have).
        Drop("rejected") for anything not from the link it claims to be."""
        links = self.links
        if isinstance(msg, m.HelloAck):
            if msg.node is None:  # unchanged: as its table (or its last whole answer) says
                link = links.with_key(opened.sender)
                if link is None or link.epoch != opened.epoch:
                    raise Drop("rejected")
                info = link.table.get(_b64(opened.sender), link.info)
                if msg.digest != m.digest(me):  # it does not hold us (any more): all, now
                    link.acked = b""
                    if not msg.digest:  # it forgot us: its WireGuard peer for us is gone too
                        link.forgotten(now)
                    self.hello(link, me, now)
                    return False
            else:
                link, info = links.claimed_by(msg.node), msg.node
            if (
                link is None
                or info is None
                or links.claimed_by(info) is not link
                or link.key != opened.sender
                or info.public_key != _b64(opened.sender)
            ):
                raise Drop("rejected")
            why = self._vouch(info, now)
            if why:
                self._rejected(now, info, src, why)
                raise Drop("rejected")
            link.acked = msg.digest  # our next HELLO leaves out what it holds
            link.served = msg.table_version
            before = (link.info, link.epoch, link.version)
            link.ack(info, opened.epoch, now, self.hub_timeout)
            return (link.info, link.epoch, link.version) != before
        if isinstance(msg, m.TableChunk):
            link = links.with_key(opened.sender)
            if link is None or link.epoch != opened.epoch:
                raise Drop("rejected")
            return link.chunk(msg)
        if isinstance(msg, m.KeyResp):
            link = links.awaiting(msg.nonce)
            if link is None or not link.key_resp(
                opened.sender, opened.epoch, msg.cookie, now, self.hub_timeout
            ):
                raise Drop("rejected")
            self.hello(link, me, now)  # at once, not at the next heartbeat
            return False
        if isinstance(msg, m.Cookie):
            link = links.with_key(opened.sender)
            if link is None:
                raise Drop("rejected")
            link.cookie = msg.cookie
            self.hello(link, me, now)
            return False
        raise Drop("rejected")  # not an answer of a static node


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()
