"""Direct-path discovery per peer: LAN probing, NAT punching, up/down detection, retries."""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Optional

import pytest

from wg_netmanager.core.messages import NodeInfo
from wg_netmanager.core.model import HANDSHAKE_HOLD, Endpoint, PathKind, PeerStats
from wg_netmanager.core.paths import TRANSITIONS, DirectPath, Event, State, Timing, lan_candidates

NOW = 1_700_000_000.0
T = Timing()
KEY = base64.b64encode(bytes(range(32))).decode()
MINE = [IPv4Interface("192.168.1.3/24")]
OBSERVED = Endpoint("203.0.113.10", 20001)
LAN_ADDR = IPv4Interface("192.168.1.4/24")
OTHER_ADDR = IPv4Interface("172.16.0.5/16")


def peer(
    locals_: tuple[IPv4Interface, ...] = (OTHER_ADDR, LAN_ADDR), endpoint: Optional[Endpoint] = OBSERVED
) -> NodeInfo:
    return NodeInfo("delta", IPv4Address("10.1.1.4"), KEY, 51000, 51001, locals_, False, endpoint)


def stats(hs: float = 0.0, rx: int = 0, ep: Optional[Endpoint] = None) -> PeerStats:
    return PeerStats(KEY, ep, hs, rx, 0)


def started(p: NodeInfo, mine: list[IPv4Interface] = MINE, st: Optional[PeerStats] = None) -> DirectPath:
    path = DirectPath(p, T)
    path.start(NOW, 42, st, mine)
    return path


def test_lan_candidates_same_subnet_first() -> None:
    p = peer((OTHER_ADDR, IPv4Interface("10.200.0.1/8"), LAN_ADDR))
    assert lan_candidates(p, MINE) == [
        Endpoint("192.168.1.4", 51000),
        Endpoint("172.16.0.5", 51000),
        Endpoint("10.200.0.1", 51000),
    ]
    assert lan_candidates(peer(()), MINE) == []
    assert lan_candidates(p, []) == [Endpoint(str(a.ip), 51000) for a in p.locals]


def test_same_subnet_waits_for_lan_before_wireguard() -> None:
    path = started(peer())
    assert path.state == State.PROBING
    assert path.wg_endpoint() is None and path.wg_keepalive() == 0
    path.update(NOW + T.lan_wait / 2, None)
    assert path.wg_endpoint() is None and path.wg_keepalive() == 0
    path.update(NOW + T.lan_wait, None)
    assert path.wg_endpoint() == OBSERVED and path.wg_keepalive() == T.probe_keepalive


def test_same_subnet_without_observed_endpoint_tries_first_candidate() -> None:
    path = started(peer(endpoint=None))
    path.update(NOW + T.lan_wait, None)
    assert path.wg_endpoint() == Endpoint("192.168.1.4", 51000)


def test_no_same_subnet_candidate_goes_to_nat_at_once() -> None:
    path = started(peer((OTHER_ADDR,)))
    assert path.wg_endpoint() == OBSERVED and path.wg_keepalive() == T.probe_keepalive


def test_probes_go_to_admin_port_of_every_candidate() -> None:
    path = started(peer())
    assert path.due_probes(NOW) == [Endpoint("192.168.1.4", 51001), Endpoint("172.16.0.5", 51001)]
    assert path.due_probes(NOW) == []  # not before the interval
    sent = 1
    t = NOW
    while sent < T.probe_count:
        t += T.probe_interval
        assert path.due_probes(t)
        sent += 1
    assert path.due_probes(t + 10 * T.probe_interval) == []


def test_probe_answer_sets_endpoint_to_peer_wg_port() -> None:
    path = started(peer())
    path.probe_answered(Endpoint("10.99.0.1", 51001), NOW)  # not one of its addresses: ignored
    assert path.wg_endpoint() is None
    path.probe_answered(Endpoint("192.168.1.4", 51001), NOW)
    assert path.wg_endpoint() == Endpoint("192.168.1.4", 51000)
    assert path.wg_keepalive() == T.probe_keepalive  # quick: the handshake's answerer counts it
    assert path.due_probes(NOW + 1) == []  # answered: no more PROBEs


def test_a_probe_answer_before_any_endpoint_makes_the_peer_afresh() -> None:
    """wireguard-go starts no handshake when an existing peer only gets an endpoint and a
    keepalive (the lab: tx 0 for 1.4 s, until the re-punch); a fresh peer shakes hands at once."""
    path = started(peer())
    assert path.wg_endpoint() is None  # the LAN wait: WireGuard is pointed nowhere yet
    first = path.generation
    path.probe_answered(Endpoint("192.168.1.4", 51001), NOW)
    assert path.generation == first + 1


def test_probe_answer_when_not_probing_is_ignored() -> None:
    path = DirectPath(peer(), T)
    path.probe_answered(Endpoint("192.168.1.4", 51001), NOW)
    assert path.endpoint is None and path.state == State.IDLE


def test_handshake_on_lan_address_is_up_lan() -> None:
    path = started(peer())
    path.probe_answered(Endpoint("192.168.1.4", 51001), NOW)
    path.update(NOW + 0.2, stats(hs=NOW + 0.1, rx=92, ep=Endpoint("192.168.1.4", 51000)))
    assert path.is_up and path.kind == PathKind.LAN
    assert path.wg_endpoint() is None  # once up, WireGuard roams on its own
    assert path.wg_keepalive() == T.keepalive


@pytest.mark.parametrize("ep", [OBSERVED, None])
def test_a_handshake_on_observed_endpoint_is_up_nat(ep: Optional[Endpoint]) -> None:
    path = started(peer((OTHER_ADDR,)))
    path.update(NOW + 1, stats(hs=NOW + 1, rx=32, ep=ep))
    assert path.is_up and path.kind == PathKind.NAT


def test_the_peers_initiations_alone_are_no_path() -> None:
    """Received bytes count the peer's handshake initiations, which reach us even where our
    responses never reach it (issue 15's soak: one side called such a path up, and the pair
    lost each other for 35 s). Only a completed handshake proves both directions."""
    path = started(peer((OTHER_ADDR,)))
    for i in range(1, 4):
        path.update(NOW + i, stats(rx=148 * i, ep=OBSERVED))  # an initiation a second
    assert path.state == State.PROBING and not path.is_up
    path.update(NOW + 4, stats(hs=NOW + 4, rx=148 * 3 + 32, ep=OBSERVED))  # the peer's keepalive confirms it
    assert path.is_up


def test_a_fresh_handshake_counts_for_a_path_that_starts_over() -> None:
    """The backend keeps a WireGuard peer whose handshake is younger than HANDSHAKE_HOLD (no
    fresh handshake follows it for as long): a path that starts over just after it counts it."""
    path = started(peer())
    path.update(NOW + 1, stats(hs=NOW + 1, rx=32, ep=OBSERVED))
    path.restart()
    path.start(NOW + 2, 43, stats(hs=NOW + 1, rx=32, ep=OBSERVED), MINE)
    path.update(NOW + 2.1, stats(hs=NOW + 1, rx=64, ep=OBSERVED))
    assert path.is_up
    path.restart()
    later = NOW + 1 + HANDSHAKE_HOLD + 1
    path.start(later, 44, stats(hs=NOW + 1, rx=64, ep=OBSERVED), MINE)
    path.update(later + 0.1, stats(hs=NOW + 1, rx=96, ep=OBSERVED))
    assert not path.is_up  # an older one is not this attempt's


def test_public_peer_with_local_equal_to_observed_is_nat() -> None:
    public = Endpoint("198.51.100.1", 51000)
    p = peer((IPv4Interface("198.51.100.1/24"),), endpoint=public)
    path = started(p, mine=[IPv4Interface("198.51.100.9/24")])
    path.update(NOW + 1, stats(hs=NOW + 1, ep=public))
    assert path.is_up and path.kind == PathKind.NAT


def test_stale_handshake_from_before_start_does_not_count() -> None:
    old = stats(hs=NOW - 100, rx=500, ep=OBSERVED)
    path = started(peer((OTHER_ADDR,)), st=old)
    path.update(NOW + 1, old)
    assert path.state == State.PROBING


def test_timeout_backs_off_doubling_up_to_retry_max() -> None:
    path = started(peer((OTHER_ADDR,)))
    delays = []
    t = NOW
    for _ in range(7):
        path.update(t + T.probe_timeout, None)
        assert path.state == State.PROBING  # not strictly beyond the timeout yet
        path.update(t + T.probe_timeout + 0.1, None)
        assert path.state == State.DOWN and path.kind == PathKind.NONE
        assert path.wg_endpoint() is None and path.wg_keepalive() == 0
        delays.append(path.retry_delay)
        assert path.retry_at == pytest.approx(t + T.probe_timeout + 0.1 + path.retry_delay)
        t = path.retry_at
        path.first_seen = NOW - 100
        assert not path.wants_retry(t - 0.01) and path.wants_retry(t)
        path.start(t, 43, None, MINE)
    assert delays == [10.0, 20.0, 40.0, 80.0, 120.0, 120.0, 120.0]


def test_up_without_rx_for_dead_after_goes_down_and_back_up() -> None:
    path = started(peer((OTHER_ADDR,)))
    path.update(NOW + 1, stats(hs=NOW + 1, rx=32, ep=OBSERVED))
    assert path.is_up
    path.update(NOW + 3, stats(hs=NOW + 1, rx=64, ep=OBSERVED))  # rx keeps it alive
    path.update(NOW + 3 + T.dead_after, stats(hs=NOW + 1, rx=64, ep=OBSERVED))
    assert path.is_up
    path.update(NOW + 3 + T.dead_after + 0.1, stats(hs=NOW + 1, rx=64, ep=OBSERVED))
    assert path.state == State.DOWN and path.retry_delay == T.retry_min
    path.update(NOW + 12, stats(hs=NOW + 1, rx=64, ep=OBSERVED))
    assert path.state == State.DOWN  # nothing new from the peer
    path.update(NOW + 13, stats(hs=NOW + 12.5, rx=96, ep=Endpoint("203.0.113.10", 20077)))
    assert path.is_up and path.kind == PathKind.NAT  # the peer's attempt got through


def test_down_then_the_other_sides_handshake_is_up() -> None:
    path = started(peer())
    path.update(NOW + T.lan_wait, stats())  # the probe timeout runs from here
    path.update(NOW + T.lan_wait + T.probe_timeout + 0.1, stats())
    assert path.state == State.DOWN
    path.update(NOW + T.probe_timeout + 2, stats(rx=148, ep=Endpoint("192.168.1.4", 51000)))
    assert path.state == State.DOWN  # its initiation: we answered, it has not confirmed yet
    hs = NOW + T.probe_timeout + 2.1
    path.update(hs, stats(hs=hs, rx=180, ep=Endpoint("192.168.1.4", 51000)))
    assert path.is_up and path.kind == PathKind.LAN


def test_up_kind_follows_roaming() -> None:
    path = started(peer())
    path.update(NOW + 1, stats(hs=NOW + 1, rx=32, ep=OBSERVED))
    assert path.kind == PathKind.NAT
    path.update(NOW + 2, stats(hs=NOW + 1, rx=64, ep=Endpoint("192.168.1.4", 51000)))
    assert path.kind == PathKind.LAN


def test_wants_retry_waits_settle() -> None:
    path = DirectPath(peer(), T)
    assert not path.wants_retry(NOW)
    assert not path.wants_retry(NOW + T.settle - 0.01)
    assert path.wants_retry(NOW + T.settle)
    path.start(NOW + T.settle, 1, None, MINE)
    assert not path.wants_retry(NOW + T.settle + 0.1)  # probing: no restart


def test_wants_retry_needs_observed_endpoint_or_same_subnet() -> None:
    far = DirectPath(peer((OTHER_ADDR,), endpoint=None), T)
    far.mine = list(MINE)
    assert not far.wants_retry(NOW)
    assert not far.wants_retry(NOW + 100)
    near = DirectPath(peer((LAN_ADDR,), endpoint=None), T)
    near.mine = list(MINE)
    assert not near.wants_retry(NOW)
    assert near.wants_retry(NOW + T.settle)


def test_restart_makes_it_idle_and_retry_at_once() -> None:
    path = started(peer((OTHER_ADDR,)))
    path.update(NOW + T.probe_timeout + 1, None)
    path.first_seen = NOW
    assert not path.wants_retry(NOW + T.probe_timeout + 2)
    path.restart()
    assert path.state == State.IDLE and path.wants_retry(NOW + T.probe_timeout + 2)


# --- the transition table -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_table_lists_the_events_each_state_takes() -> None:
    takes = {s: {e: TRANSITIONS[s, e] for (t, e) in TRANSITIONS if t is s} for s in State}
    assert takes == {
        State.IDLE: {Event.START: State.PROBING, Event.RESTART: State.IDLE},
        State.PROBING: {
            Event.HANDSHAKE: State.UP,
            Event.PROBE_TIMEOUT: State.DOWN,
            Event.REPUNCH: State.PROBING,
            Event.RESTART: State.IDLE,
            Event.QUIET: State.IDLE,
        },
        State.UP: {Event.DEAD: State.DOWN, Event.RESTART: State.IDLE, Event.QUIET: State.IDLE},
        State.DOWN: {
            Event.HANDSHAKE: State.UP,
            Event.START: State.PROBING,
            Event.RESTART: State.IDLE,
            Event.QUIET: State.IDLE,
        },
    }


def _in(state: State) -> DirectPath:
    """A path brought to `state` through its public methods."""
    path = DirectPath(peer((OTHER_ADDR,)), T)
    if state is not State.IDLE:
        path.start(NOW, 42, None, MINE)
    if state is State.UP:
        path.update(NOW + 1, stats(hs=NOW + 1, rx=32, ep=OBSERVED))
    if state is State.DOWN:
        path.update(NOW + T.probe_timeout + 1, None)
    assert path.state is state
    return path


LATER = NOW + 100
FIRE: dict[Event, Callable[[DirectPath], None]] = {
    Event.START: lambda p: p.start(LATER, 43, None, MINE),
    Event.HANDSHAKE: lambda p: p.update(LATER, stats(hs=LATER, rx=1000, ep=OBSERVED)),
    Event.PROBE_TIMEOUT: lambda p: p.update(p.since + T.probe_timeout + 0.1, None),
    Event.DEAD: lambda p: p.update(
        p.last_rx_change + T.dead_after + 0.1, stats(hs=NOW + 1, rx=32, ep=OBSERVED)
    ),
    Event.RESTART: lambda p: p.restart(),
    Event.QUIET: lambda p: p.quiet(),
    Event.REPUNCH: lambda p: p.update(p.punched + T.repunch, None),
}


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS), ids=lambda x: x.name)
def test_every_transition_in_the_table_is_one_the_code_makes(
    state: State, event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _in(state)
    seen: list[tuple[State, Event]] = []
    run = DirectPath._transition

    def spy(self: DirectPath, e: Event) -> None:
        seen.append((self.state, e))
        run(self, e)

    monkeypatch.setattr(DirectPath, "_transition", spy)
    FIRE[event](path)
    assert seen == [(state, event)] and path.state is TRANSITIONS[state, event]


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
def test_an_event_the_table_does_not_list_is_a_bug(state: State) -> None:
    for event in Event:
        if (state, event) not in TRANSITIONS:
            path = _in(state)
            with pytest.raises(RuntimeError, match=f"{event.name} in state {state.name}"):
                path._transition(event)
            assert path.state is state
    if state in (State.PROBING, State.UP):
        with pytest.raises(RuntimeError):
            _in(state).start(LATER, 43, None, MINE)  # the node only starts what wants_retry


def test_committed_diagram_is_the_one_the_table_draws() -> None:
    spec = importlib.util.spec_from_file_location("state_diagrams", ROOT / "scripts" / "state_diagrams.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "direct-path.md").read_text()
    assert committed == module.render(), "stale: run .venv/bin/python scripts/state_diagrams.py"
    for (state, event), new in TRANSITIONS.items():
        assert f"    {state.value} --> {new.value} : {event.value}\n" in committed


def test_probing_makes_the_wireguard_peer_afresh_every_repunch_until_heard() -> None:
    """wireguard-go holds a peer's next handshake back for 5 s; a fresh peer sends its first at
    once: while nothing is heard, a new generation every `repunch` seconds."""
    path = started(peer((OTHER_ADDR,)))  # not on our LAN: WireGuard goes to the NAT at once
    first = path.generation
    assert path.next_deadline() == pytest.approx(NOW + T.repunch)
    path.update(NOW + T.repunch / 2, None)
    assert path.generation == first
    path.update(NOW + T.repunch, None)
    assert path.generation == first + 1 and path.state == State.PROBING
    path.update(NOW + 2 * T.repunch, None)
    assert path.generation == first + 2
    path.update(NOW + 2.5 * T.repunch, stats(hs=NOW + 2.4, rx=92, ep=OBSERVED))
    assert path.is_up
    path.update(NOW + 4 * T.repunch, stats(hs=NOW + 2.4, rx=92, ep=OBSERVED))
    assert path.generation == first + 2  # up: left alone


def test_the_side_with_the_larger_key_starts_its_handshake_a_moment_later() -> None:
    """Rule 2c: two initiations crossing leave neither side a session for 5 s (the lab's
    LAN pair); the larger key waits `stagger`, answering the other's handshake meanwhile."""
    first = DirectPath(peer((OTHER_ADDR,)), T)
    first.start(NOW, 42, None, MINE)
    assert first.wg_endpoint() == OBSERVED and first.wg_keepalive() == T.probe_keepalive
    second = DirectPath(peer((OTHER_ADDR,)), T, yields=True)
    second.start(NOW, 43, None, MINE)
    gen = second.generation
    assert second.wg_endpoint() == OBSERVED and second.wg_keepalive() == 0
    second.due_probes(NOW)
    assert second.next_deadline() == NOW + T.stagger
    second.update(NOW + T.stagger / 2, stats())
    assert second.wg_keepalive() == 0 and second.generation == gen
    second.update(NOW + T.stagger, stats())  # nothing heard: its own handshake, from a fresh peer
    assert second.wg_keepalive() == T.probe_keepalive and second.generation == gen + 1
    assert not second.holding and second.punched == NOW + T.stagger  # re-punches from here


def test_a_yielding_side_that_hears_the_other_first_goes_up_without_a_handshake_of_its_own() -> None:
    path = DirectPath(peer(), T, yields=True)
    path.start(NOW, 42, None, MINE)
    path.probe_answered(Endpoint("192.168.1.4", 51001), NOW + 0.01)
    gen = path.generation
    assert path.wg_endpoint() == Endpoint("192.168.1.4", 51000) and path.wg_keepalive() == 0
    path.update(NOW + 0.05, stats(rx=148, ep=Endpoint("192.168.1.4", 51000)))  # its initiation
    assert not path.is_up  # answered; not confirmed yet
    path.update(NOW + 0.06, stats(hs=NOW + 0.06, rx=180, ep=Endpoint("192.168.1.4", 51000)))
    assert path.is_up and path.generation == gen
