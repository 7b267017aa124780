"""The data plane as the shell sees it: notice that the interface (or the daemon behind it,
wireguard-go) is gone, restore it with back-off, and give up when it cannot be restored.

Rules:
1. A failed backend call (reading counters, applying peers) is logged at most once a minute
   per kind, with the count held back, and makes the shell ask the backend what is wrong
   (`Backend.problem`), one question at a time.
2. A failed apply is retried after a back-off (APPLY_RETRY, doubling up to APPLY_RETRY_MAX),
   not on every turn of the loop.
3. With a problem, the data plane is down: counters are not read and nothing is applied;
   `Backend.restore` is tried RESTORE_ATTEMPTS times, RESTORE_FIRST seconds apart at first and
   twice as long after each failure. Once restored, the whole desired state is applied again.
4. When every attempt failed, the agent exits with status 1 and says why in one line: a
   supervisor (systemd's Restart=) starts it again, which is all that is left to try.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from ..backends import Backend, BackendError
from ..core.limits import LogLimiter
from ..core.model import InterfaceSettings

log = logging.getLogger(__name__)

APPLY_RETRY = 0.5  # seconds after a failed apply
APPLY_RETRY_MAX = 10.0
RESTORE_FIRST = 0.25  # seconds from noticing the problem to the first attempt
RESTORE_ATTEMPTS = 6  # 0.25 + 0.5 + 1 + 2 + 4 s between them: given up after about 16 s
FAILURE_LOG_EVERY = 60.0

RunInPool = Callable[..., Awaitable[Any]]  # Agent._bk: a backend call on the backend thread


class DataPlane:
    def __init__(self, backend: Backend, settings: InterfaceSettings, bk: RunInPool) -> None:
        self.backend = backend
        self.settings = settings  # to restore the interface as it was brought up
        self.bk = bk
        self.problem: Optional[str] = None  # None: up
        self.down_since: Optional[float] = None
        self.restores = 0  # times the interface was restored
        self.attempts = 0  # failed restore attempts since it went down
        self.gave_up: Optional[str] = None  # the one line to exit with
        self.apply_after = 0.0  # no apply before this (rule 2)
        self._apply_delay = APPLY_RETRY
        self._suspect = False  # a call failed: ask the backend
        self._next_attempt = 0.0
        self._task: Optional[asyncio.Future[Any]] = None
        self._log = LogLimiter(FAILURE_LOG_EVERY)

    @property
    def up(self) -> bool:
        return self.problem is None

    def failed(self, what: str, exc: BackendError, now: float) -> None:
        """A backend call failed (rule 1)."""
        self._suspect = True
        if self.up:
            held = self._log.allow(what, now)
            if held is not None:
                more = f" ({held} more since)" if held else ""
                log.error("%s failed: %s%s", what, exc, more)

    def applied(self, ok: bool, now: float) -> None:
        """Rule 2."""
        if ok:
            self._apply_delay, self.apply_after = APPLY_RETRY, 0.0
        else:
            self.apply_after = now + self._apply_delay
            self._apply_delay = min(self._apply_delay * 2, APPLY_RETRY_MAX)

    def next_due(self, now: float) -> float:
        """When `step` next has something to start (inf: nothing, or its task still runs)."""
        if self._task is not None and not self._task.done():
            return math.inf
        if self.up:
            return now if self._suspect else math.inf
        return self._next_attempt if self.gave_up is None else math.inf

    def step(self, now: float) -> Optional[asyncio.Future[Any]]:
        """The work due now (asking the backend, or an attempt to restore), as a task the
        loop keeps; None if nothing is due or the last one still runs."""
        if self._task is not None and not self._task.done():
            return None
        if self._task is not None:
            self._task.result()  # a bug in there surfaces here, as if awaited
            self._task = None
        if self.up and self._suspect:
            self._suspect = False
            self._task = asyncio.ensure_future(self._ask())
        elif not self.up and self.gave_up is None and now >= self._next_attempt:
            self._task = asyncio.ensure_future(self._restore())
        return self._task

    async def _ask(self) -> None:
        problem = await self.bk(self.backend.problem)
        if problem is not None and self.up:
            now = time.monotonic()
            self.problem, self.down_since, self.attempts = problem, now, 0
            self._next_attempt = now + RESTORE_FIRST
            log.error("data plane down: %s; restoring %s", problem, self.backend.ifname)

    async def _restore(self) -> None:
        try:
            await self.bk(self.backend.restore, self.settings)
        except BackendError as exc:
            self.attempts += 1
            since = time.monotonic() - (self.down_since or 0.0)
            if self.attempts >= RESTORE_ATTEMPTS:
                self.gave_up = (
                    f"data plane: {self.backend.ifname} could not be restored ({self.attempts} attempts "
                    f"in {since:.0f} s; last: {exc}); exiting for the supervisor to restart the agent"
                )
                return
            delay = RESTORE_FIRST * 2**self.attempts
            self._next_attempt = time.monotonic() + delay
            log.warning(
                "restoring %s failed (attempt %d of %d, next in %g s): %s",
                self.backend.ifname,
                self.attempts,
                RESTORE_ATTEMPTS,
                delay,
                exc,
            )
            return
        took = time.monotonic() - (self.down_since or 0.0)
        self.restores += 1
        self.problem = self.down_since = None
        self._suspect = False
        self.applied(True, 0.0)
        log.warning("data plane restored: %s is back after %.1f s", self.backend.ifname, took)

    def status(self, now: float) -> dict[str, Any]:
        doc: dict[str, Any] = {"state": "up" if self.up else "down", "restores": self.restores}
        if not self.up:
            doc["problem"] = self.problem
            doc["downFor"] = round(now - (self.down_since or now), 1)  # seconds
        forwarding = getattr(self.backend, "forwarding_problem", None)  # managed backends
        if forwarding is not None:
            doc["forwarding"] = forwarding
        gateway = getattr(self.backend, "gateway_problem", None)
        if gateway is not None:
            doc["gateway"] = gateway
        return doc

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
