"""Looking up the static nodes given by DNS name, when the node asks (dynamic DNS).

Rules:
1. One look-up at a time per name: a name whose look-up still runs is not asked again (the
   node is answered with the address in use, so that it does not ask on every turn).
2. Each look-up has RESOLVE_TIMEOUT seconds; past that the node hears of a failure, and the
   look-up may go on (a thread in getaddrinfo cannot be stopped), still rule 1.
3. A failure keeps the last address found: the node is given it again, so a DNS hiccup never
   cuts it off a static node that did not move.
4. A failure is logged once, when the name stops resolving, and once when it resolves again.
5. A hung resolver never delays the agent's exit: look-ups run in daemon threads.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT = 5.0  # seconds; a static node is looked up every 2 s once it is quiet

Lookup = Callable[[str], Awaitable[str]]  # host -> IPv4 address; raises OSError or UnicodeError
Answer = Callable[[str, Optional[str], float], None]  # Node.set_static_address


def getaddrinfo_v4(host: str) -> asyncio.Future[str]:
    """The system resolver, in a daemon thread of its own (rule 5)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(address: Optional[str], error: Optional[BaseException]) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(str(address))

    def run() -> None:
        address: Optional[str] = None
        error: Optional[BaseException] = None
        try:
            infos = socket.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
            address = str(infos[0][4][0])
        except (OSError, UnicodeError) as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(deliver, address, error)
        except RuntimeError:
            pass  # the loop is closed: the agent has exited meanwhile

    threading.Thread(target=run, name="resolve", daemon=True).start()
    return future


class Resolver:
    def __init__(
        self,
        hosts: dict[str, str],
        answer: Answer,
        lookup: Callable[[str], Awaitable[str]] = getaddrinfo_v4,
        timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        self.hosts = hosts  # static node name -> DNS name
        self.answer = answer
        self.lookup = lookup
        self.timeout = timeout
        self.pending: dict[str, asyncio.Future[Any]] = {}  # name -> its look-up (rule 1)
        self.last: dict[str, str] = {}  # name -> last address found (rule 3)
        self.failing: dict[str, str] = {}  # name -> why it does not resolve (rule 4)

    def set_hosts(self, hosts: dict[str, str]) -> None:
        """The static nodes given by DNS name after a reload; what was found for a name that
        stays is kept, a look-up under way for one that went is cancelled."""
        for name in set(self.hosts) - set(hosts):
            task = self.pending.pop(name, None)
            if task is not None:
                task.cancel()
        self.last = {n: a for n, a in self.last.items() if self.hosts.get(n) == hosts.get(n)}
        self.failing = {n: w for n, w in self.failing.items() if self.hosts.get(n) == hosts.get(n)}
        self.hosts = hosts

    def start(self, due: list[str]) -> None:
        """Look up the names the node asked for (`Node.resolve_due`), those not already under
        way. Each is answered at once with the address in use, which restarts the node's
        timer for it: while a look-up runs, the node neither asks again on every turn of the
        loop nor wakes the loop for it."""
        now = time.monotonic()
        for name in due:
            if name not in self.hosts:
                continue
            if name not in self.pending:
                self.pending[name] = asyncio.ensure_future(self._resolve(name))
            self.answer(name, self.last.get(name), now)

    async def _resolve(self, name: str) -> None:
        lookup = asyncio.ensure_future(self.lookup(self.hosts[name]))
        try:
            done, _ = await asyncio.wait({lookup}, timeout=self.timeout)
            if not done:
                self._failed(name, f"no answer within {self.timeout:g} s")
                await asyncio.wait({lookup})  # rule 1: a late answer still counts
            try:
                address = lookup.result()
            except (OSError, UnicodeError) as exc:
                self._failed(name, str(exc))
            else:
                self._found(name, address)
        except asyncio.CancelledError:
            lookup.cancel()
            raise
        finally:
            self.pending.pop(name, None)

    def _found(self, name: str, address: str) -> None:
        if self.failing.pop(name, None) is not None:
            log.info("%s (static node %s) resolves again: %s", self.hosts[name], name, address)
        self.last[name] = address
        self.answer(name, address, time.monotonic())

    def _failed(self, name: str, reason: str) -> None:
        if name in self.failing:
            log.debug("cannot resolve %s (static node %s): %s", self.hosts[name], name, reason)
        else:
            kept = self.last.get(name)
            log.warning(
                "cannot resolve %s (static node %s): %s; %s",
                self.hosts[name],
                name,
                reason,
                f"keeping {kept}" if kept else "retrying",
            )
        self.failing[name] = reason
        self.answer(name, self.last.get(name), time.monotonic())  # rule 3

    def status(self) -> dict[str, dict[str, Any]]:
        """By static node name: its DNS name, the address in use, why it does not resolve."""
        out: dict[str, dict[str, Any]] = {}
        for name, host in self.hosts.items():
            entry: dict[str, Any] = {"host": host, "address": self.last.get(name)}
            if name in self.failing:
                entry["error"] = self.failing[name]
            out[name] = entry
        return out

    async def close(self) -> None:
        for task in self.pending.values():
            task.cancel()
        if self.pending:
            await asyncio.wait(list(self.pending.values()))
