"""The shell's look-ups of static nodes by DNS name (issue 15, fault 3), with fake resolvers
that fail or hang: the last good address stays, one look-up per name at a time, a deadline
for each, one log line per outage."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any, Optional

import pytest

from wg_netmanager.io.resolver import Resolver, getaddrinfo_v4

HOSTS = {"beta": "beta.dyn.test", "gamma": "gamma.dyn.test"}


class FakeDNS:
    """Answers from `records`; a name in `hang` never answers until released, one in `fail`
    fails as getaddrinfo does. Counts the look-ups under way per name."""

    def __init__(self) -> None:
        self.records = {"beta.dyn.test": "198.51.100.2", "gamma.dyn.test": "198.51.100.3"}
        self.fail: set[str] = set()
        self.hang: set[str] = set()
        self.release = asyncio.Event()
        self.running: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    async def lookup(self, host: str) -> str:
        self.calls[host] = self.calls.get(host, 0) + 1
        self.running[host] = self.running.get(host, 0) + 1
        self.most[host] = max(self.most.get(host, 0), self.running[host])
        try:
            if host in self.hang:
                await self.release.wait()
            await asyncio.sleep(0)
            if host in self.fail:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return self.records[host]
        finally:
            self.running[host] -= 1


class Answers:
    def __init__(self) -> None:
        self.got: list[tuple[str, Optional[str]]] = []

    def __call__(self, name: str, address: Optional[str], now: float) -> None:
        self.got.append((name, address))

    def last(self, name: str) -> Optional[str]:
        return next((a for n, a in reversed(self.got) if n == name), "never answered")


async def settle(resolver: Resolver, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while resolver.pending:
        assert time.monotonic() < deadline, f"look-ups still running: {list(resolver.pending)}"
        await asyncio.sleep(0.005)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_a_failed_lookup_keeps_the_last_good_address(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        dns, answers = FakeDNS(), Answers()
        resolver = Resolver(HOSTS, answers, dns.lookup, timeout=0.2)
        resolver.start(["beta"])
        await settle(resolver)
        assert answers.last("beta") == "198.51.100.2"
        dns.fail.add("beta.dyn.test")
        with caplog.at_level(logging.DEBUG, "wg_netmanager.io.resolver"):
            for _ in range(5):  # the node asks every 2 s while beta is quiet
                resolver.start(["beta"])
                await settle(resolver)
        assert {a for n, a in answers.got[2:]} == {"198.51.100.2"}, "never None: the address stays"
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "keeping 198.51.100.2" in warnings[0].getMessage()
        assert resolver.status()["beta"]["error"].startswith("[Errno -3]")
        dns.fail.clear()
        dns.records["beta.dyn.test"] = "198.51.100.20"  # it moved meanwhile
        with caplog.at_level(logging.INFO, "wg_netmanager.io.resolver"):
            resolver.start(["beta"])
            await settle(resolver)
        assert answers.last("beta") == "198.51.100.20"
        assert "resolves again" in caplog.records[-1].getMessage()
        assert resolver.status()["beta"] == {"host": "beta.dyn.test", "address": "198.51.100.20"}

    run(main())


def test_a_hung_lookup_has_a_deadline_and_delays_no_other_name() -> None:
    async def main() -> None:
        dns, answers = FakeDNS(), Answers()
        resolver = Resolver(HOSTS, answers, dns.lookup, timeout=0.3)
        resolver.start(["beta", "gamma"])
        await settle(resolver)
        dns.hang.add("beta.dyn.test")
        dns.records["gamma.dyn.test"] = "198.51.100.30"
        started = time.monotonic()
        resolver.start(["beta", "gamma"])
        while answers.last("gamma") != "198.51.100.30":  # gamma does not wait for beta
            assert time.monotonic() - started < 0.2, "gamma waited for beta's resolver"
            await asyncio.sleep(0.005)
        while "beta" not in resolver.failing:  # beta's failure, at its deadline
            assert time.monotonic() - started < 1.0, "no deadline on beta's look-up"
            await asyncio.sleep(0.005)
        assert answers.last("beta") == "198.51.100.2"
        assert 0.25 < time.monotonic() - started < 1.0
        for _ in range(10):  # asked again and again while beta's resolver still hangs
            resolver.start(["beta"])
            await asyncio.sleep(0.01)
        assert dns.most["beta.dyn.test"] == 1 and dns.calls["beta.dyn.test"] == 2, "one at a time"
        assert answers.last("beta") == "198.51.100.2"  # each of those asks answered at once
        dns.release.set()
        await settle(resolver)
        resolver.start(["beta"])  # free again
        await settle(resolver)
        assert dns.calls["beta.dyn.test"] == 3
        await resolver.close()

    run(main())


def test_close_cancels_a_hung_lookup() -> None:
    async def main() -> None:
        dns = FakeDNS()
        dns.hang.add("beta.dyn.test")
        resolver = Resolver(HOSTS, Answers(), dns.lookup, timeout=10)
        resolver.start(["beta"])
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await resolver.close()
        assert time.monotonic() - started < 0.5 and not resolver.pending

    run(main())


def test_system_resolver_runs_in_a_daemon_thread() -> None:
    async def main() -> None:
        assert await getaddrinfo_v4("127.0.0.1") == "127.0.0.1"
        with pytest.raises(OSError):
            await getaddrinfo_v4("no-such-name.invalid")

    run(main())
