"""A static node's side of the protocol: answering KEYREQs and HELLOs, pushing the table.

`Serving` wraps the `Hub` (the member table) with what needs the wire: cookies before any
answer larger than the question, rate limits, the batching of pushes. It seals through the
node's `send`, so it never sees a key.
"""

from __future__ import annotations

import base64
import logging
import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Optional

from . import messages as m
from .cookie import Cookies
from .hub import Hub, Member
from .limits import LogLimiter, PerSource
from .messages import NodeInfo
from .model import Endpoint
from .wire import Drop, Opened

log = logging.getLogger(__name__)

PUSH_INTERVAL = 0.5  # seconds between two pushes of a changed table
# KEYREQ answers per source address and in all (tokens per second, burst).
KEYREQS = ((20.0, 64.0), (1000.0, 2000.0))  # a household or office behind one NAT fits the burst
# Certificates to verify for HELLOs (tokens per second, burst), per member and in all: a renewal
# now and then per member; the whole mesh rejoining a restarted static node in a few seconds
# (~60 us each: 500/s is 3 % of a core).
SIGNATURES = ((0.2, 4.0), (500.0, 1000.0))

Send = Callable[[int, bytes, Endpoint, bytes, int], None]  # type, body, to, key, epoch
Vouch = Callable[[NodeInfo, float], Optional[str]]  # why a claim is not believed (trust.py)


def _raw(key: str) -> bytes:
    return base64.b64decode(key)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


class Serving:
    def __init__(
        self,
        hub: Hub,
        rng: random.Random,
        now: float,
        send: Send,
        vouch: Vouch,
        costly: Callable[[NodeInfo], bool] = lambda info: False,
    ) -> None:
        self.hub = hub
        self.cookies = Cookies(rng, now)
        self.keyreqs = PerSource(*KEYREQS[0], *KEYREQS[1])
        # Signatures to verify for claims in HELLOs (certificates not seen yet), per member and
        # in all: a member sending a new certificate blob in every HELLO costs us an Ed25519
        # check each, and must not get more than its share.
        self.signatures = PerSource(*SIGNATURES[0], *SIGNATURES[1])
        self._costly = costly
        self.log_limit = LogLimiter()
        self.last_push = -1e9
        self._send = send
        self._vouch = vouch

    def _message(self, msg: m.Message, dst: Endpoint, key: bytes, epoch: int) -> None:
        self._send(*m.encode_fast(msg), dst, key, epoch)

    def keyreq(self, now: float, opened: Opened, src: Endpoint) -> None:
        """Tell who we are, sealed for the asker's claimed key (only its holder opens it) and
        no larger than the question; with a cookie for that key and address."""
        nonce, shown = int.from_bytes(opened.body[:8], "big"), opened.body[8:]
        proven = self.cookies.valid(opened.sender, src, shown, now)
        if not self.keyreqs.allow(src.host, now, proven):
            raise Drop("limited")
        cookie = self.cookies.make(opened.sender, src, now)
        self._message(m.KeyResp(nonce, cookie), src, opened.sender, opened.epoch)

    def hello(self, now: float, msg: m.Hello, opened: Opened, src: Endpoint) -> None:
        """A member's HELLO: whole, or naming by digest the NodeInfo we hold of it."""
        if not self.cookies.valid(opened.sender, src, msg.cookie, now):
            # Not proven to receive at `src`: only a cookie (smaller than the HELLO), which
            # reaches the sender only if `src` is really where it is.
            t, body = m.encode(m.Cookie(self.cookies.make(opened.sender, src, now)))
            if len(body) <= len(opened.body):  # never more than it sent
                self._send(t, body, src, opened.sender, opened.epoch)
            raise Drop("unproven")
        key = _b64(opened.sender)
        member = self.hub.members.get(key)
        if msg.node is not None:
            if msg.node.public_key != key:
                raise Drop("rejected")  # for another key than its own
            info = msg.node if msg.node.epoch == opened.epoch else replace(msg.node, epoch=opened.epoch)
            sent = m.digest(msg.node)
        elif member is not None and member.claim is not None and member.claim.epoch == opened.epoch:
            info, sent = member.claim, member.digest  # unchanged, as its digest says
            if msg.digest != sent:  # it changed, or we hold another: ask for all of it
                ack = m.HelloAck(None, self.hub.version, sent)
                self._message(ack, src, opened.sender, opened.epoch)
                return
        else:  # we do not hold it (we forgot it, or it restarted): its next HELLO is whole
            self._message(m.HelloAck(None, self.hub.version), src, opened.sender, opened.epoch)
            return
        why = self.hub.check_claim(info, src)
        if why is None and self._costly(info) and not self.signatures.allow(key, now):
            raise Drop("limited")
        why = why or self._vouch(info, now)
        if why:
            held = self.log_limit.allow(f"claim {src.host}", now)
            if held is not None:
                more = f" ({held} more held back)" if held else ""
                log.warning("rejected node %s from %s: %s%s", info.name, src, why, more)
            raise Drop("rejected")
        self.hub.hello(info, now, src, msg.table_version)
        member = self.hub.members[key]
        member.claim, member.digest = info, sent
        pushed = self.push(now, first=info)
        # The member holds our table at the version it named: our entry there is us.
        me = None if msg.table_version == self.hub.version else self.hub.me
        self._message(m.HelloAck(me, self.hub.version, sent), src, opened.sender, opened.epoch)
        if not pushed and msg.table_version != self.hub.version:
            self._update(self.hub.members[key])

    def leave(self, sender: str, msg: m.Leave) -> None:
        member = self.hub.members.get(sender)
        if not (member and member.info.name == msg.name and msg.public_key == sender):
            raise Drop("rejected")  # not a member, or for another name or key
        log.info("node %s left", msg.name)
        self.hub.leave(sender)

    def goodbye(self, msg: m.Leave, told: set[str]) -> None:
        """We stop: say so to every member but those in `told` (public keys), each sealed for
        that member's run. One datagram each, sent once, to where its HELLOs come from."""
        for key, member in self.hub.members.items():
            if member.admin is not None and key not in told:
                self._message(msg, member.admin, _raw(key), member.info.epoch)

    def push(self, now: float, first: Optional[NodeInfo] = None) -> bool:
        """Publish a changed table to every member at once, rather than at their next HELLO,
        but at most every PUSH_INTERVAL: a push costs members x chunks datagrams, and while
        many nodes join the table changes with nearly every HELLO. `first`, the sender of the
        HELLO being answered, learns the new version first."""
        if not self.hub.dirty or now - self.last_push < PUSH_INTERVAL:
            return False
        self.hub.commit()
        self.last_push = now
        member = self.hub.members.get(first.public_key) if first else None
        if member is not None and member.admin is not None:
            ack = m.HelloAck(self.hub.me, self.hub.version)
            self._message(ack, member.admin, _raw(member.info.public_key), member.info.epoch)
        for member in self.hub.members.values():
            if member.admin is not None:
                self._update(member)
        return True

    def next_deadline(self) -> float:
        """When the next push is due (a changed table waits for PUSH_INTERVAL), or expiry."""
        push = self.last_push + PUSH_INTERVAL if self.hub.dirty else math.inf
        return min(push, self.hub.next_expiry())

    def _update(self, member: Member) -> None:
        """What a member lacks of our table (the changes since the version it holds, or the
        table); afterwards it holds the current version (if this is lost, its next HELLO
        says so)."""
        assert member.admin is not None
        key = _raw(member.info.public_key)
        for t, body in self.hub.encoded_update(member.table_version):  # encoded once per version
            self._send(t, body, member.admin, key, member.info.epoch)
        member.table_version = self.hub.version
