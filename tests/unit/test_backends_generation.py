"""A new PeerSpec.generation re-creates the WireGuard peer, unless a handshake is fresh.

The rule is `reconcile.plan_peers` (pure); ManagedBackend and the simulator both run it.
"""

from __future__ import annotations

import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from wg_netmanager.backends import managed, reconcile
from wg_netmanager.backends.base import BackendError, DeviceState, PeerState
from wg_netmanager.backends.managed import ManagedBackend
from wg_netmanager.backends.reconcile import HANDSHAKE_HOLD, PeerOp, plan_peers
from wg_netmanager.core.model import DesiredState, Endpoint, PeerSpec

sys.path.insert(0, str(Path(__file__).parents[1] / "sim"))
import simnet  # noqa: E402

KEY = "A" * 43 + "="
NOW = 1_700_000_000.0  # unix time, like WireGuard's last_handshake
EP = Endpoint("203.0.113.1", 51000)
LEARNT = Endpoint("198.51.100.7", 40000)  # where WireGuard found the peer (roaming)
NETS = (IPv4Network("10.1.1.2/32"),)


def spec(generation: int, endpoint: Endpoint | None = EP) -> PeerSpec:
    return PeerSpec(KEY, endpoint, NETS, 2, generation)


def peer(handshake: float, endpoint: Endpoint | None = EP) -> dict[str, PeerState]:
    return {KEY: PeerState(KEY, endpoint, frozenset(NETS), 2, last_handshake=handshake)}


# --- the rule ---------------------------------------------------------------------------------


def test_new_generation_with_an_old_handshake_recreates_the_peer() -> None:
    ops, generations = plan_peers(peer(NOW - HANDSHAKE_HOLD - 1), [spec(2)], {KEY: 1}, NOW)
    assert ops == [PeerOp(KEY, remove=True), PeerOp(KEY, endpoint=EP, keepalive=2, allowed_ips=NETS)]
    assert generations == {KEY: 2}


def test_a_peer_that_never_shook_hands_is_recreated() -> None:
    ops, _ = plan_peers(peer(0.0), [spec(2)], {KEY: 1}, NOW)
    assert [op.remove for op in ops] == [True, False]


def test_a_handshake_within_the_hold_keeps_the_session() -> None:
    """The other side's initiation just got through: re-creating would throw it away."""
    for age in (0.0, 1.0, HANDSHAKE_HOLD):
        ops, generations = plan_peers(peer(NOW - age), [spec(2)], {KEY: 1}, NOW)
        assert ops == [], age
        assert generations == {KEY: 2}  # and this generation is done with: no re-creation later
    ops, _ = plan_peers(peer(NOW - HANDSHAKE_HOLD), [spec(2)], {KEY: 2}, NOW + 60)
    assert ops == []


def test_same_generation_changes_nothing() -> None:
    assert plan_peers(peer(0.0), [spec(1)], {KEY: 1}, NOW) == ([], {KEY: 1})


def test_a_peer_seen_first_is_added_not_recreated() -> None:
    """No generation applied yet (a restarted agent, or a new peer): nothing to re-create."""
    assert plan_peers(peer(0.0), [spec(3)], {}, NOW) == ([], {KEY: 3})
    ops, _ = plan_peers({}, [spec(3)], {KEY: 1}, NOW)  # applied before, but WireGuard lost it
    assert ops == [PeerOp(KEY, endpoint=EP, keepalive=2, allowed_ips=NETS)]


def test_recreated_peer_keeps_its_learnt_endpoint() -> None:
    """An up path asks for no endpoint (WireGuard roams); a re-created peer must not lose it."""
    ops, _ = plan_peers(peer(0.0, endpoint=LEARNT), [spec(2, endpoint=None)], {KEY: 1}, NOW)
    assert ops[0].remove and ops[1].endpoint == LEARNT
    ops, _ = plan_peers(peer(0.0, endpoint=LEARNT), [spec(2, endpoint=EP)], {KEY: 1}, NOW)
    assert ops[1].endpoint == EP  # a wanted endpoint wins


def test_generations_of_peers_no_longer_wanted_are_dropped() -> None:
    applied = {KEY: 1, "B" * 43 + "=": 4}
    _, generations = plan_peers(peer(NOW), [spec(1)], applied, NOW)
    assert generations == {KEY: 1}
    assert applied == {KEY: 1, "B" * 43 + "=": 4}  # the input is not changed


def test_an_address_wanted_twice_is_refused_before_anything() -> None:
    twice = [spec(2), PeerSpec("B" * 43 + "=", None, NETS)]
    with pytest.raises(ValueError, match="two peers"):
        plan_peers(peer(0.0), twice, {KEY: 1}, NOW)


# --- ManagedBackend runs it -------------------------------------------------------------------


class FakeControl:
    def __init__(self) -> None:
        self.peers: dict[str, PeerState] = {}
        self.ops: list[list[PeerOp]] = []
        self.fail = False

    def get(self) -> DeviceState:
        return DeviceState(peers=dict(self.peers))

    def set_device(self, private_key=None, listen_port=None) -> None:  # pragma: no cover
        pass

    def apply_ops(self, ops: list[PeerOp]) -> None:
        if self.fail:
            raise BackendError("control socket gone")
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
        super().__init__("wgfake0")
        self.control = FakeControl()

    def up(self, settings) -> None:  # pragma: no cover
        pass

    def down(self) -> None:  # pragma: no cover
        pass


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.setattr(managed.netlink, "sync_routes", lambda *a: None)
    monkeypatch.setattr(managed.netlink, "set_forwarding", lambda *a: None)
    return Backend()


def desired(generation: int) -> DesiredState:
    return DesiredState((spec(generation),), (), False)


def test_backend_recreates_on_a_new_generation(backend: Backend) -> None:
    backend.apply(desired(1))
    assert [op.remove for op in backend.control.ops[-1]] == [False]  # created
    backend.apply(desired(1))  # nothing changed: no ops at all
    assert len(backend.control.ops) == 1
    backend.apply(desired(2))
    assert [op.remove for op in backend.control.ops[-1]] == [True, False]  # removed, added again


def test_backend_keeps_a_fresh_session(backend: Backend) -> None:
    backend.apply(desired(1))
    backend.control.peers[KEY] = PeerState(KEY, EP, frozenset(NETS), 2, last_handshake=time.time())
    n = len(backend.control.ops)
    backend.apply(desired(2))
    assert backend.control.ops[n:] == []


def test_backend_records_a_generation_only_once_applied(backend: Backend) -> None:
    backend.apply(desired(1))
    backend.control.fail = True
    with pytest.raises(BackendError):
        backend.apply(desired(2))
    backend.control.fail = False
    backend.apply(desired(2))  # the re-creation that failed is done now
    assert [op.remove for op in backend.control.ops[-1]] == [True, False]


# --- and so does the simulator ----------------------------------------------------------------


def test_the_simulator_runs_the_real_rule() -> None:
    assert simnet.plan_peers is reconcile.plan_peers


def one_fake_peer(handshake_age: float) -> tuple[simnet.SimNet, simnet.Host]:
    net = simnet.SimNet()
    host = net.add_host("alpha", "198.51.100.1", "10.1.1.1")
    net._apply(host, desired(1))
    host.wg[KEY].endpoint = LEARNT  # WireGuard followed the peer
    host.wg[KEY].last_handshake = net.now - handshake_age
    host.wg[KEY].session = True
    return net, host


def test_simulated_wireguard_keeps_a_fresh_session() -> None:
    net, host = one_fake_peer(handshake_age=1.0)
    before = host.wg[KEY]
    net._apply(host, DesiredState((spec(2, endpoint=None),)))
    assert host.wg[KEY] is before and before.session


def test_simulated_wireguard_recreates_a_stale_peer_with_its_endpoint() -> None:
    net, host = one_fake_peer(handshake_age=HANDSHAKE_HOLD + 1)
    before = host.wg[KEY]
    net._apply(host, DesiredState((spec(2, endpoint=None),)))
    after = host.wg[KEY]
    assert after is not before and not after.session and after.last_handshake == 0.0
    assert after.endpoint == LEARNT and after.next_send == net.now  # its initiation goes out now
