"""When to try a statement again after a lock timeout, and for how long: pure, no clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by a number of attempts and a total wait.

    Attempt n waits between half and all of min(cap, base * 2^(n-1)) before the next.
    """

    max_attempts: int = 20
    max_wait: timedelta = timedelta(minutes=10)
    base: timedelta = timedelta(milliseconds=200)
    cap: timedelta = timedelta(seconds=5)

    def delay(self, attempt: int, *, rng: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt ``attempt`` (``rng()`` in [0, 1) picks the jitter)."""
        wait = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** min(attempt - 1, 32))
        return float(wait / 2 + rng() * wait / 2)

    def next_delay(self, attempt: int, waited: float, *, rng: Callable[[], float]) -> float | None:
        """Seconds to wait before the next attempt, or None to give up: after ``max_attempts``
        attempts, or when the wait would take the whole past ``max_wait`` (``waited``
        seconds since the first attempt began)."""
        delay = self.delay(attempt, rng=rng)
        if attempt >= self.max_attempts or waited + delay > self.max_wait.total_seconds():
            return None
        return delay
