"""A new PeerSpec.generation re-creates the WireGuard peer, unless a handshake is fresh."""

from __future__ import annotations

import time

from wg_netmanager.backends import managed
from wg_netmanager.backends.base import DeviceState, PeerState
from wg_netmanager.backends.managed import ManagedBackend
from wg_netmanager.core.model import DesiredState, Endpoint, PeerSpec

KEY = "A" * 43 + "="


class FakeControl:
    def __init__(self) -> None:
        self.peers: dict[str, PeerState] = {}
        self.ops: list = []

    def get(self) -> DeviceState:
        return DeviceState(peers=dict(self.peers))

    def set_device(self, private_key=None, listen_port=None) -> None:  # pragma: no cover
        pass

    def apply_ops(self, ops) -> None:
        self.ops.append(ops)
        for op in ops:
            if op.remove:
                self.peers.pop(op.public_key, None)
            else:
                old = self.peers.get(op.public_key) or PeerState(op.public_key)
                self.peers[op.public_key] = PeerState(
                    op.public_key,
                    endpoint=op.endpoint or old.endpoint,
                    allowed_ips=frozenset(op.allowed_ips) if op.allowed_ips is not None else old.allowed_ips,
                    keepalive=op.keepalive if op.keepalive is not None else old.keepalive,
                )


class Backend(ManagedBackend):
    name = "fake"

    def __init__(self) -> None:
        self.ifname = "wgfake0"
        self.control = FakeControl()

    def up(self, settings) -> None:  # pragma: no cover
        pass

    def down(self) -> None:  # pragma: no cover
        pass


def desired(generation: int) -> DesiredState:
    spec = PeerSpec(KEY, Endpoint("203.0.113.1", 51000), (), 2, generation)
    return DesiredState((spec,), (), False)


def test_new_generation_recreates_the_peer(monkeypatch) -> None:
    monkeypatch.setattr(managed.netlink, "sync_routes", lambda *a: None)
    monkeypatch.setattr(managed.netlink, "set_forwarding", lambda *a: None)
    b = Backend()
    b.apply(desired(1))
    assert [op.remove for op in b.control.ops[-1]] == [False]  # created
    b.apply(desired(1))  # nothing changed: no ops at all
    assert len(b.control.ops) == 1
    b.apply(desired(2))
    assert [op.remove for op in b.control.ops[-1]] == [True, False]  # removed, then added again


def test_fresh_handshake_keeps_the_peer(monkeypatch) -> None:
    monkeypatch.setattr(managed.netlink, "sync_routes", lambda *a: None)
    monkeypatch.setattr(managed.netlink, "set_forwarding", lambda *a: None)
    b = Backend()
    b.apply(desired(1))
    b.control.peers[KEY] = PeerState(
        KEY, Endpoint("203.0.113.1", 51000), keepalive=2, last_handshake=time.time()
    )
    n = len(b.control.ops)
    b.apply(desired(2))
    assert all(not op.remove for ops in b.control.ops[n:] for op in ops)


def test_recreated_peer_keeps_its_endpoint(monkeypatch) -> None:
    """An up path asks for no endpoint (WireGuard roams); a re-created peer must not lose it."""
    monkeypatch.setattr(managed.netlink, "sync_routes", lambda *a: None)
    monkeypatch.setattr(managed.netlink, "set_forwarding", lambda *a: None)
    b = Backend()
    b.apply(desired(1))
    spec = PeerSpec(KEY, None, (), 2, 2)
    b.apply(DesiredState((spec,), (), False))
    ops = b.control.ops[-1]
    assert ops[0].remove and ops[1].endpoint == Endpoint("203.0.113.1", 51000)
