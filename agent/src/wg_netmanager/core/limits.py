"""Rate limits for what a datagram may cost us: new keys to derive, answers, log lines.

Pure token buckets (time is an argument). A source that is over its limit gets its datagrams
dropped (counted as `limited`); one flooding source does not spend what the others need.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float = -1.0  # -1: full on first use
    at: float = 0.0

    def allow(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class PerSource:
    """A bucket per source (bounded: the least recently seen sources are forgotten, and a
    forgotten source starts full again, which only ever helps the honest) and one for all."""

    def __init__(
        self, rate: float, burst: float, total_rate: float, total_burst: float, max_sources: int = 4096
    ) -> None:
        self.rate, self.burst, self.max_sources = rate, burst, max_sources
        self.total = TokenBucket(total_rate, total_burst)
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, source: str, now: float, proven: bool = False) -> bool:
        """`proven`: the source showed a cookie for its address, so only its own bucket
        counts: a flood from other (spoofed) addresses cannot spend what a member needs."""
        bucket = self._sources.get(source)
        if bucket is None:
            bucket = self._sources[source] = TokenBucket(self.rate, self.burst)
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        return bucket.allow(now) and (proven or self.total.allow(now))


class LogLimiter:
    """At most one log line per key and `interval`; says how many were held back since."""

    def __init__(self, interval: float = 60.0, max_keys: int = 1024) -> None:
        self.interval, self.max_keys = interval, max_keys
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, key: str, now: float) -> int | None:
        """None: hold this line back; else the number of lines held back before it."""
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return None
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        if len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return last[1] if last else 0
