"""How long a statement may wait, when to try it again after a lock timeout, and for how
long: pure, no clock, no connection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from byhand.vendors.target import Target

__all__ = ["Limits", "RetryPolicy"]


@dataclass(frozen=True)
class Limits:
    """The timeouts statements run under."""

    lock_timeout: timedelta
    statement_timeout: timedelta | None
    #: For statements whose waiting blocks no query of the application (CREATE/DROP INDEX
    #: CONCURRENTLY wait for older transactions): None = up to ``max_wait``, 0 = no limit.
    concurrent_lock_timeout: timedelta | None
    max_wait: timedelta

    def for_statement(
        self, target: Target, sql: str, observed: Mapping[str, Any] | None = None
    ) -> tuple[timedelta, timedelta | None]:
        """(lock timeout, statement timeout) for ``sql`` (``observed``: what the rehearsal saw
        it do). A short lock timeout keeps the application's queries from queueing behind a
        waiting ALTER, but no shorter than the target's least for it (MariaDB: 1 s for what
        reads every row, which NOWAIT would throw away at its last lock), unless --max-wait is
        shorter still; a statement whose
        waiting blocks nobody gets a long one instead (a short one would only throw index
        builds away), still within the operator's --max-wait."""
        if not target.blocks_nobody_while_waiting(sql):
            least = min(target.least_lock_timeout(observed), self.max_wait)
            return max(self.lock_timeout, least), self.statement_timeout
        concurrent = self.max_wait if self.concurrent_lock_timeout is None else self.concurrent_lock_timeout
        statement = self.statement_timeout or timedelta(0)
        if statement and (not concurrent or concurrent >= statement):
            # A wait cut short by the statement timeout would read as a failure: end it a
            # little before, as a lock timeout, which says what it waited for.
            concurrent = statement * 0.9
        return concurrent, statement


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
