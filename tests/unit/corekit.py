"""Helpers for the core's unit tests: nodes with real keys, and hand-played peers.

`Fake` is a node we drive by hand (h11's ConnectionPair idea): a member, a static node, or an
impostor holding its own key; `exchange` joins two real nodes by a perfect link.
"""

from __future__ import annotations

import base64
import random
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Optional

from wg_netmanager.core import messages as m
from wg_netmanager.core.model import Endpoint
from wg_netmanager.core.node import Node, Params, StaticNode
from wg_netmanager.core.wire import KEYREQ_TYPE, KIND_KEYREQ, Codec, Identity, Opened

SHARED = bytes(range(32))
NOW = 1_700_000_000.0
SUBNET = IPv4Network("10.1.1.0/24")
BETA = StaticNode("beta", IPv4Address("10.1.1.2"), "198.51.100.2", 50000, 50001)
BETA_ADMIN = Endpoint("198.51.100.2", 50001)
ALICE_SRC = Endpoint("203.0.113.1", 40001)


def ident(n: int) -> Identity:
    return Identity(bytes([n]) * 32)


def key(n: int) -> str:
    return base64.b64encode(ident(n).public).decode()


def make_node(name: str, ip: str, n: int, statics: tuple[StaticNode, ...] = (BETA,)) -> Node:
    params = Params(name, IPv4Address(ip), SUBNET, key(n), 50000, 50001, statics)
    node = Node(params, SHARED, ident(n), NOW, random.Random(n))
    node.set_locals([IPv4Interface("192.168.1.3/24")])
    return node


def info(name: str, ip: str, n: int, **kw: Any) -> m.NodeInfo:
    return m.NodeInfo(name, IPv4Address(ip), key(n), 50000, 50001, **kw)


class Fake:
    """A node we play by hand: it holds its own key (a member, or a static node's impostor)."""

    def __init__(self, n: int, epoch: Optional[int] = None, identity: Optional[Identity] = None) -> None:
        self.identity = identity or ident(n)
        self.codec = Codec(SHARED, self.identity, epoch or 1000 + n)
        self.key = base64.b64encode(self.identity.public).decode()

    def to(self, node: Node, msg: m.Message) -> bytes:
        return self.codec.seal(*m.encode(msg), node.codec.identity.public, node.codec.epoch)

    def read(self, data: bytes) -> tuple[Opened, Optional[m.Message]]:
        opened = self.codec.open(data)
        return opened, None if opened.msg_type == KEYREQ_TYPE else m.decode(opened.msg_type, opened.body)

    def cookie(self, hub: Node, src: Endpoint) -> bytes:
        """Ask `hub` who it is from `src`, as a node does first: the KEY_RESP has our cookie."""
        hub.take_outgoing()
        hub.datagram(NOW, self.codec.keyreq(7), src)
        [(data, dst)] = hub.take_outgoing()
        assert dst == src
        _, resp = self.read(data)
        assert isinstance(resp, m.KeyResp) and resp.nonce == 7
        return resp.cookie

    def hello(self, hub: Node, node: m.NodeInfo, src: Endpoint, version: int = 0) -> None:
        hub.datagram(NOW, self.to(hub, m.Hello(node, version, self.cookie(hub, src))), src)

    def answer_keyreq(self, node: Node, now: float = NOW) -> None:
        """Play beta: answer the KEYREQ `node` sent to beta's address."""
        node.tick(now)
        reqs = [d for d, dst in node.take_outgoing() if dst == BETA_ADMIN and d[5] == KIND_KEYREQ]
        assert reqs, "no KEYREQ to beta"
        nonce = int.from_bytes(self.codec.open(reqs[-1]).body[:8], "big")
        node.datagram(now, self.to(node, m.KeyResp(nonce, bytes(16))), BETA_ADMIN)


def beta() -> Node:
    return make_node("beta", "10.1.1.2", 2)


def exchange(a: Node, b: Node, a_ep: Endpoint, b_ep: Endpoint, now: float = NOW, rounds: int = 4) -> None:
    """Let `a` and `b` talk (each tick, then what it sent goes to the other) for some rounds."""
    for _ in range(rounds):
        a.tick(now)
        for data, dst in a.take_outgoing():
            if dst == b_ep:
                b.datagram(now, data, a_ep)
        for data, dst in b.take_outgoing():
            if dst == a_ep:
                a.datagram(now, data, b_ep)


def names(node: Node, now: float = NOW) -> set[str]:
    """The peers in its status once it has taken in what it received (the view is merged on a tick)."""
    node.tick(now)
    return {p["name"] for p in node.status(now)["peers"]}


BETA_INFO = info("beta", "10.1.1.2", 2, static=True, endpoint=Endpoint("198.51.100.2", 50000))


def linked(alice: Node, fake_beta: Fake, version: int = 5) -> None:
    """alice holds fake_beta as its static node beta (key, run, an answer)."""
    fake_beta.answer_keyreq(alice)
    alice.datagram(NOW, fake_beta.to(alice, m.HelloAck(BETA_INFO, version)), BETA_ADMIN)
    assert alice.links["beta"].info == BETA_INFO, alice.drops
