"""After a unit failed: try again (after how long), or stop the run (with which error).

Only lock timeouts and deadlocks are tried again, while the retry policy allows; each is
reported with its blockers, which are cancelled or terminated when the operator asked.
Everything else stops the run with an ApplyError saying where and what.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from byhand.exceptions import ConnectionLost, GaveUpOnLocks, StatementFailed
from byhand.operating.executing import Position, UnitFailed
from byhand.operating.journal import Entry, Journal
from byhand.operating.monitor import Monitor, actions_on
from byhand.operating.retrying import Limits, RetryPolicy
from byhand.vendors.target import Blocker, Target

__all__ = ["StopRule"]


class StopRule:
    def __init__(
        self,
        target: Target,
        journal: Journal,
        monitor: Monitor,
        *,
        retry: RetryPolicy,
        limits: Limits,
        cancel_blockers_after: int | None,
        terminate_idle_after: timedelta,
        emit: Callable[..., None],
        rng: Callable[[], float],
    ) -> None:
        self.target = target
        self.journal = journal
        self.monitor = monitor
        self.retry = retry
        self.limits = limits
        self.cancel_blockers_after = cancel_blockers_after
        self.terminate_idle_after = terminate_idle_after
        self.emit = emit
        self.rng = rng

    def delay_after(self, failed: UnitFailed, attempt: int, waited: float, *, transactional: bool) -> float:
        """Seconds to wait before the next attempt, or the ApplyError that ends the run
        (after ``attempt`` attempts over ``waited`` seconds; a ``transactional`` unit is
        rolled back whole)."""
        target, at = self.target, failed.position
        message = target.params.error_text(failed.error)
        if target.is_connection_lost(failed.error):
            raise ConnectionLost(where=at.where, detail=message)
        target.rollback()
        committed = _committed(at)
        if not target.is_lock_timeout(failed.error):
            self._journal_failure(at, attempt, message)
            left = None if transactional or at.step is None else _leftover_of(target, at.step.sql)
            raise StatementFailed(
                where=at.where,
                error=message,
                rolled_back=transactional,
                committed=committed,
                left=left,
                advice=target.refusal_advice(failed.error) if at.step and at.step.online else None,
            )
        lock_timeout = (
            self.limits.for_statement(target, at.step.sql, at.step.observed)[0] if at.step else self.limits.lock_timeout
        )
        blockers = self.monitor.blockers(at.step, older_than=lock_timeout)
        delay = self.retry.next_delay(attempt, waited, rng=self.rng)
        if delay is None:
            self._journal_failure(at, attempt, f"gave up on locks: {message}", blockers)
            raise GaveUpOnLocks(
                where=at.where,
                attempts=attempt,
                waited=waited,
                lock_timeout=target.lock_timeout_text(lock_timeout),
                blockers=[b.describe() for b in blockers],
                committed=committed,
            )
        self.emit(
            "lock-timeout",
            **at.event_data(),
            attempt=attempt,
            lock_timeout=lock_timeout.total_seconds(),
            retry_in=delay,
            blockers=[b.as_dict() for b in blockers],
        )
        if self.cancel_blockers_after is not None and attempt >= self.cancel_blockers_after:
            try:
                self._act_on(at, blockers)
            except target.driver_errors() as exc:
                error = target.params.error_text(exc)
                raise StatementFailed(where=f"{at.where}, acting on a blocker", error=error, rolled_back=True) from None
        return delay

    def _act_on(self, at: Position, blockers: list[Blocker]) -> None:
        for blocker, action in actions_on(blockers, terminate_idle_after=self.terminate_idle_after):
            self.monitor.act(blocker, action)
            self.journal.write(Entry(event=action, status="done", migration=at.migration, detail=blocker.as_dict()))
            self.emit(action, block=at.event_data()["block"], migration=at.migration, blocker=blocker.as_dict())

    def _journal_failure(self, at: Position, attempt: int, message: str, blockers: list[Blocker] | None = None) -> None:
        """Best effort, after the rollback: the failure is raised whether or not this lands."""
        if at.plan is None:
            return  # the run's start failed: there may be no journal yet
        detail = {"blockers": [b.as_dict() for b in blockers]} if blockers else None
        journal, migration = self.journal, at.migration
        if at.index is not None and at.step is not None:
            entry = journal.statement(migration, at.index, at.step, "failed", attempt, error=message, detail=detail)
        else:
            entry = Entry(event="control", status="failed", migration=migration, error=message)
        try:
            journal.write(entry)
        except self.target.driver_errors():
            pass


def _leftover_of(target: Target, sql: str) -> str | None:
    """What a statement that ran alone and failed left, as the SQL the next run drops it
    with (an INVALID index); None when nothing, or when it cannot be told."""
    try:
        return target.leftover_of(sql)
    except target.driver_errors():
        return None


def _committed(at: Position) -> str:
    """What of the failed migration is committed: nothing, or its first statements (a
    transaction that failed was rolled back; statements that ran alone stay)."""
    if at.plan is None:
        return "Nothing was changed."
    done = len(at.plan.progress.done)
    if not done:
        return "Nothing of that migration is committed."
    return f"{at.plan.name}: {done} of {at.total} statement(s) committed; running the runbook again resumes after them."
