"""Small helpers for tests and benchmarks that use the lab."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll `predicate` until it returns something truthy (returned), or raise TimeoutError
    after `timeout` seconds naming `what`. Tests wait for conditions, never fixed times."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
