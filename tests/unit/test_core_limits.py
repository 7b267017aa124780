"""Rate limits and return-routability cookies."""

from __future__ import annotations

import random

from wg_netmanager.core.cookie import ROTATE, Cookies
from wg_netmanager.core.limits import LogLimiter, PerSource, TokenBucket
from wg_netmanager.core.model import Endpoint

KEY = bytes(32)
SRC = Endpoint("203.0.113.7", 50123)


def test_token_bucket_refills_at_its_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3.0)
    assert [b.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.allow(0.4) is False and b.allow(0.5) is True  # 1 token per 0.5 s


def test_one_source_cannot_spend_the_others_share() -> None:
    limit = PerSource(rate=1.0, burst=2.0, total_rate=100.0, total_burst=100.0)
    assert [limit.allow("10.0.0.1", 0.0) for _ in range(3)] == [True, True, False]
    assert limit.allow("10.0.0.2", 0.0)


def test_total_limit_holds_whatever_the_number_of_sources() -> None:
    limit = PerSource(rate=10.0, burst=10.0, total_rate=1.0, total_burst=5.0, max_sources=2)
    assert sum(limit.allow(f"10.0.0.{i}", 0.0) for i in range(50)) == 5


def test_log_limiter_counts_what_it_held_back() -> None:
    log = LogLimiter(interval=60.0)
    assert log.allow("x", 0.0) == 0
    assert log.allow("x", 1.0) is None and log.allow("x", 2.0) is None
    assert log.allow("y", 2.0) == 0
    assert log.allow("x", 61.0) == 2


def test_cookie_is_bound_to_key_and_address() -> None:
    c = Cookies(random.Random(1), now=0.0)
    cookie = c.make(KEY, SRC, 0.0)
    assert c.valid(KEY, SRC, cookie, 1.0)
    assert not c.valid(bytes([1]) * 32, SRC, cookie, 1.0)
    assert not c.valid(KEY, Endpoint("203.0.113.7", 50124), cookie, 1.0)
    assert not c.valid(KEY, Endpoint("203.0.113.8", 50123), cookie, 1.0)


def test_cookie_outlives_one_rotation_not_two() -> None:
    c = Cookies(random.Random(1), now=0.0)
    cookie = c.make(KEY, SRC, 0.0)
    assert c.valid(KEY, SRC, cookie, ROTATE + 1)  # the previous secret still counts
    assert not c.valid(KEY, SRC, cookie, 2 * ROTATE + 2)
    assert "redacted" in repr(c)
