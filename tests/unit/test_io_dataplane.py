"""The shell's watch over the data plane (issue 15, fault 2), with a fake backend: a failed call
makes it ask what is wrong, a problem makes it restore with back-off, and after
RESTORE_ATTEMPTS failures it gives up with one line for the supervisor. Logs stay bounded."""

from __future__ import annotations

import asyncio
import logging
import time
from ipaddress import IPv4Interface, IPv4Network
from typing import Any, Optional

import pytest

from wg_netmanager.backends import BackendError
from wg_netmanager.backends.managed import _relearned
from wg_netmanager.core.model import Endpoint, InterfaceSettings, PeerSpec
from wg_netmanager.io import dataplane
from wg_netmanager.io.dataplane import DataPlane

SETTINGS = InterfaceSettings("wg0", IPv4Interface("10.1.1.3/24"), 51820, "")


class FakeBackend:
    ifname = "wg0"

    def __init__(self) -> None:
        self.dead: Optional[str] = None  # what `problem` says
        self.restorable = True
        self.restores = 0

    def problem(self) -> Optional[str]:
        return self.dead

    def restore(self, settings: InterfaceSettings) -> None:
        self.restores += 1
        if not self.restorable:
            raise BackendError("cannot start wireguard-go: no such file")
        self.dead = None


async def bk(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def drive(plane: DataPlane, until: Any, timeout: float) -> None:
    """Run the plane's steps as the daemon's loop does, until `until()`."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        task = plane.step(time.monotonic())
        if task is not None:
            await task
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def fast(monkeypatch: Any) -> None:
    monkeypatch.setattr(dataplane, "RESTORE_FIRST", 0.01)


def test_a_failed_call_with_a_problem_restores(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        backend = FakeBackend()
        plane = DataPlane(backend, SETTINGS, bk)  # type: ignore[arg-type]
        backend.dead = "interface wg0 is gone"
        with caplog.at_level(logging.INFO, "wg_netmanager.io.dataplane"):
            for _ in range(75):  # every tick of 5 s of a dead wireguard-go
                plane.failed(
                    "reading WireGuard's peers", BackendError("connection refused"), time.monotonic()
                )
            await drive(plane, lambda: not plane.up, 2)
            assert plane.status(time.monotonic())["state"] == "down"
            await drive(plane, lambda: plane.up, 2)
        assert plane.status(time.monotonic()) == {"state": "up", "restores": 1}
        assert backend.restores == 1
        assert len(caplog.records) == 3, [r.getMessage() for r in caplog.records]  # failed, down, restored

    asyncio.run(main())


def test_a_failed_call_without_a_problem_only_logs_and_backs_off() -> None:
    async def main() -> None:
        backend = FakeBackend()
        plane = DataPlane(backend, SETTINGS, bk)  # type: ignore[arg-type]
        plane.failed("applying the WireGuard configuration", BackendError("EINVAL"), time.monotonic())
        await drive(plane, lambda: plane._task is not None and plane._task.done(), 2)
        assert plane.up and backend.restores == 0
        now = 100.0
        delays = []
        for _ in range(8):
            plane.applied(False, now)
            delays.append(plane.apply_after - now)
        assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
        plane.applied(True, now)
        assert plane.apply_after == 0.0

    asyncio.run(main())


def test_gives_up_after_the_last_attempt_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        backend = FakeBackend()
        backend.restorable = False
        plane = DataPlane(backend, SETTINGS, bk)  # type: ignore[arg-type]
        backend.dead = "interface wg0 is gone"
        plane.failed("reading WireGuard's peers", BackendError("gone"), time.monotonic())
        with caplog.at_level(logging.WARNING, "wg_netmanager.io.dataplane"):
            await drive(plane, lambda: plane.gave_up is not None, 10)
        assert backend.restores == dataplane.RESTORE_ATTEMPTS
        assert plane.gave_up is not None and "could not be restored" in plane.gave_up
        assert "exiting for the supervisor" in plane.gave_up and "\n" not in plane.gave_up
        assert plane.step(time.monotonic()) is None  # nothing more is tried
        assert len(caplog.records) <= dataplane.RESTORE_ATTEMPTS + 2

    asyncio.run(main())


def test_a_restored_device_gets_back_the_endpoints_wireguard_had_learned() -> None:
    ep = Endpoint("198.51.100.1", 51380)
    spec = PeerSpec("A=", None, (IPv4Network("10.1.1.1/32"),), 2)
    assert _relearned(spec, {"A=": ep}, {}).endpoint == ep
    assert _relearned(spec, {"A=": ep}, {"A=": object()}).endpoint is None  # it has the peer
    pinned = PeerSpec("A=", Endpoint("198.51.100.9", 1), (IPv4Network("10.1.1.1/32"),))
    assert _relearned(pinned, {"A=": ep}, {}) is pinned  # the core's own endpoint wins
    assert _relearned(spec, {}, {}) is spec


def test_next_due_says_when_to_wake_the_loop() -> None:
    async def main() -> None:
        backend = FakeBackend()
        plane = DataPlane(backend, SETTINGS, bk)  # type: ignore[arg-type]
        now = time.monotonic()
        assert plane.next_due(now) == float("inf")  # up, nothing failed
        backend.dead = "interface wg0 is gone"
        plane.failed("reading WireGuard's peers", BackendError("gone"), now)
        assert plane.next_due(now) == now  # ask at once
        task = plane.step(now)
        assert task is not None and plane.next_due(now) == float("inf")  # while it runs
        await task
        assert not plane.up and now < plane.next_due(time.monotonic()) < now + 1  # the first attempt

    asyncio.run(main())
