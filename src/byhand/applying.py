"""Execute a runbook: preflight, one operator at a time, statement by statement with lock
timeouts and retries, journaled so that any failed run resumes exactly where it stopped.

The library reports through ``on_event`` and raises ByhandError subclasses; it never prints.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from byhand import __version__
from byhand.events import Event, EventSink
from byhand.exceptions import (
    ByhandError,
    CannotConnect,
    ConnectionLost,
    GaveUpOnLocks,
    Interrupted,
    ManualStepPending,
    PreflightRefused,
    RunLockHeld,
    StatementFailed,
    VendorMismatch,
)
from byhand.journal import DEFAULT_TABLE, Entry, Journal
from byhand.preflight import BlockPlan, check_runbook, describe_plans, manual_step_id, numbered_steps
from byhand.runbook import Control, Item, Runbook, Step
from byhand.units import Unit, link_units, split_block
from byhand.vendors.target import Blocker, Target, digest, tables_named_in
from byhand.watching import Watcher

__all__ = ["DEFAULT_LOCK_TIMEOUT", "ApplyOptions", "ApplyResult", "Backoff", "apply_runbook", "connect"]

#: 100 ms: each attempt can stall the table's queue for at most this long, and retries with
#: backoff land the migration within seconds of the blocker ending. benchmarks/lockstall.py
#: (200 queries/s, 1M rows, a 5.5 s idle-in-transaction blocker): the application's worst
#: query took 99.6 ms under byhand apply, 4,703 ms under ``migrate``. MariaDB rounds it down
#: to whole seconds: 0, i.e. NOWAIT, which left the application unaffected there.
DEFAULT_LOCK_TIMEOUT = timedelta(milliseconds=100)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits between half and all of
    min(cap, base * 2^(n-1))."""

    base: timedelta = timedelta(milliseconds=200)
    cap: timedelta = timedelta(seconds=5)

    def delay(self, attempt: int, *, rng: Callable[[], float]) -> float:
        wait = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** min(attempt - 1, 32))
        return float(wait / 2 + rng() * wait / 2)


@dataclass(frozen=True)
class ApplyOptions:
    lock_timeout: timedelta = DEFAULT_LOCK_TIMEOUT
    statement_timeout: timedelta | None = None
    #: For statements whose waiting blocks nobody (CREATE INDEX CONCURRENTLY); 0 = no limit.
    concurrent_lock_timeout: timedelta = timedelta(0)
    max_attempts: int = 20
    max_wait: timedelta = timedelta(minutes=10)
    backoff: Backoff = field(default_factory=Backoff)
    cancel_blockers_after: int | None = None
    terminate_idle_after: timedelta = timedelta(seconds=10)
    manual_steps_done: frozenset[str] = frozenset()
    skip_manual_steps: bool = False
    journal_table: str = DEFAULT_TABLE
    run_lock_wait: timedelta = timedelta(seconds=5)
    dry_run: bool = False


@dataclass
class ApplyResult:
    plans: list[BlockPlan]
    applied: int = 0
    skipped: int = 0
    elapsed: float = 0.0


def connect(target: Target, *, application: str = "byhand apply") -> None:
    """Open the target's connection; any failure becomes CannotConnect, password scrubbed."""
    params = target.params
    try:
        target.connect(application=f"{application} {os.getpid()}@{socket.gethostname()}")
    except ImportError as exc:
        raise CannotConnect(params.display(), f"the {params.vendor} driver is not installed ({exc.name})") from None
    except Exception as exc:  # noqa: BLE001 -- every driver has its own errors for this
        detail = params.error_text(exc) or type(exc).__name__
        raise CannotConnect(params.display(), detail) from None


def apply_runbook(
    runbook: Runbook,
    target: Target,
    *,
    options: ApplyOptions,
    on_event: EventSink,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> ApplyResult:
    """Preflight ``runbook`` against the (connected) ``target``, then run it unless dry_run."""
    if runbook.vendor != target.vendor:
        raise VendorMismatch(runbook=runbook.vendor, database=target.vendor)
    return _Run(runbook, target, options, on_event, sleep, clock, rng).run()


class _Run:
    def __init__(
        self,
        runbook: Runbook,
        target: Target,
        options: ApplyOptions,
        on_event: EventSink,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: Callable[[], float],
    ) -> None:
        self.runbook = runbook
        self.target = target
        self.options = options
        self.emit_event = on_event
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.journal = Journal(target, table=options.journal_table, checksum=runbook.checksum())
        self.errors = target.driver_errors()
        self.monitor: Target | None = None
        self.monitor_lock = threading.Lock()
        self.watcher: Watcher | None = None
        self.where = "preflight"
        self.block_kind = "start"  # what the events are about: the run's start, or a block's kind
        self.current: tuple[int | None, Step | None] = (None, None)
        #: Statements whose "started" row an earlier write carried: (migration, index).
        self.prestarted: set[tuple[str | None, int]] = set()
        #: Journal rows waiting for the next transaction (a "done" row of a statement alone).
        self.carry: list[Entry] = []

    def emit(self, name: str, **data: Any) -> None:
        data.setdefault("block", self.block_kind)
        self.emit_event(Event(name, data))

    # -- the whole run -----------------------------------------------------------------

    def run(self) -> ApplyResult:
        started = self.clock()
        lock_name = self.options.journal_table
        try:
            if not self.options.dry_run:
                self._take_run_lock(lock_name)
            result = self._preflight()
        except self.errors as exc:
            message = self.target.params.error_text(exc)
            raise PreflightRefused([f"the database refused a preflight query: {message}"]) from None
        except KeyboardInterrupt:
            raise Interrupted("preflight (nothing was changed)") from None
        try:
            if self.options.dry_run:
                holder = self.target.run_lock_holder(lock_name)
                if holder is not None:
                    self.emit("preflight", text=f"note: another apply holds the run lock now: {holder}")
                return result
            return self._execute(result, started)
        finally:
            if not self.options.dry_run:
                try:
                    self.target.release_run_lock(lock_name)
                except Exception:  # noqa: BLE001 -- a lost session has released it already
                    pass
            if self.watcher is not None:
                self.watcher.stop()
            if self.monitor is not None:
                self.monitor.close()

    def _take_run_lock(self, lock_name: str) -> None:
        """Wait up to --run-lock-wait: a run that just died may still hold the lock for the
        moment its server session takes to notice."""
        deadline = self.clock() + self.options.run_lock_wait.total_seconds()
        while not self.target.try_run_lock(lock_name):
            if self.clock() >= deadline:
                raise RunLockHeld(self._holder(lock_name))
            self.sleep(0.1)

    def _holder(self, lock_name: str) -> str:
        described = self.target.run_lock_holder(lock_name) or "the holder could not be identified"
        runs = [r for r in self.journal.runs(limit=5) if r.outcome == "running or crashed"]
        if runs:
            run = runs[0]
            described += (
                f"; the journal names run {run.run_id} by {run.operator} (pid {run.detail.get('pid')}), "
                f"started {run.started_at}"
            )
        return described

    def _preflight(self) -> ApplyResult:
        recorded = self.target.recorded_migrations()
        plans = check_runbook(
            self.runbook,
            applied=recorded or set(),
            has_migrations_table=recorded is not None,
            progress=self.journal.progress(),
            manual_done=self.options.manual_steps_done,
            skip_manual=self.options.skip_manual_steps,
        )
        self._report(plans)
        return ApplyResult(plans=plans)

    def _report(self, plans: list[BlockPlan]) -> None:
        runbook, options = self.runbook, self.options
        signed = runbook.header.get("signed")
        text = [
            f"runbook {runbook.direction}, {len(runbook.migrations)} migration(s), "
            f"checksum sha256:{self.journal.checksum}",
            f"database {self.target.params.display()} ({self.target.vendor} {self.target.server_version()})",
            f"lock timeout {options.lock_timeout.total_seconds():g}s, up to {options.max_attempts} attempts "
            f"within {options.max_wait.total_seconds():g}s",
        ]
        if signed:
            last = signed[-1]
            text.append(
                f"re-signed by {last.get('by')} at {last.get('at')} after review (was sha256:{last.get('was')})"
            )
        text.extend(describe_plans(plans, dry_run=options.dry_run))
        if options.dry_run and not self.journal.exists():
            text.append("the journal table does not exist yet; apply would create it:")
            text.extend("    " + line for line in self.journal.ddl().splitlines())
        for line in text:
            self.emit("preflight", text=line)

    def _start(self, skipped: list[BlockPlan]) -> None:
        """Create the journal if needed, journal the run's start and the skipped migrations:
        one transaction where DDL allows, retried like any other on lock timeouts."""
        journal, target = self.journal, self.target
        target.begin_transaction(
            lock_timeout=self.options.lock_timeout, statement_timeout=self.options.statement_timeout
        )
        if not journal.exists():
            journal.create()
        detail = {
            "pid": os.getpid(),
            "database": target.params.display(),
            "direction": self.runbook.direction,
            "signed": self.runbook.header.get("signed"),
            "byhand": __version__,
        }
        entries = [Entry(event="run-started", status="running", detail=detail)]
        entries += [
            Entry(event="migration", status="skipped", migration=p.block.migration)
            for p in skipped
            if p.block.migration
        ]
        target.write_and_commit(*journal.insert(*entries))

    def _execute(self, result: ApplyResult, started: float) -> ApplyResult:
        journal, target = self.journal, self.target
        target.set_timeouts(
            lock_timeout=self.options.lock_timeout, statement_timeout=self.options.statement_timeout, local=False
        )
        for item in self.runbook.preamble:
            if isinstance(item, Control):  # SQLite's PRAGMA legacy_alter_table = OFF
                target.execute(item.sql.rstrip(";"))
        self.where = "the run's start (journal)"
        skipped = [p for p in result.plans if p.action == "skip"]
        self._with_retries(lambda attempt: self._start(skipped), plan=None, total=0, transactional=True)
        self.emit("run-started", run=journal.run_id, operator=journal.operator, database=target.params.display())
        if target.watchable:
            self.watcher = Watcher(session=target.session_id(), monitor=self._monitor, emit=self.emit, clock=self.clock)
            self.watcher.start()
        for plan in skipped:
            self.emit("migration-skipped", migration=plan.name, reason=plan.reason)
        result.skipped = len(skipped)
        runnable = [p for p in result.plans if p.action == "run"]
        outcome, error = "done", None
        try:
            units = self._plan_units(runnable)
            for position, plan in enumerate(runnable, start=1):
                self._run_block(plan, units[id(plan)], position, len(runnable))
                result.applied += 1
        except ManualStepPending as exc:
            outcome, error = "stopped", str(exc)
            raise
        except GaveUpOnLocks as exc:
            outcome, error = "gave-up", str(exc)
            raise
        except ConnectionLost as exc:
            outcome, error = "connection-lost", str(exc)
            raise
        except KeyboardInterrupt:
            target.rollback()
            outcome, error = "interrupted", "interrupted by the operator"
            raise Interrupted(self.where) from None
        except ByhandError as exc:
            outcome, error = "failed", str(exc)
            raise
        except self.errors as exc:  # outside any statement: settling a resumed one, a journal write
            target.rollback()
            outcome, error = "failed", target.params.error_text(exc)
            raise StatementFailed(where=self.where, error=error, rolled_back=True) from None
        finally:
            result.elapsed = self.clock() - started
            summary = f"{result.applied} applied, {result.skipped} skipped"
            self._finish_run(outcome, error, summary, result.elapsed)
        return result

    def _finish_run(self, outcome: str, error: str | None, summary: str, elapsed: float) -> None:
        try:
            self.target.rollback()  # whatever a failure left open
            self.journal.write(
                *self.carry, Entry(event="run-finished", status=outcome, error=error, detail={"summary": summary})
            )
        except Exception:  # noqa: BLE001 -- the connection is gone: the run shows as crashed
            pass
        self.emit("run-finished", run=self.journal.run_id, outcome=outcome, elapsed=elapsed, summary=summary)

    # -- one block ---------------------------------------------------------------------

    def _plan_units(self, runnable: list[BlockPlan]) -> dict[int, list[Unit]]:
        """Every block's units, after settling statements a crashed run left uncertain, linked
        so that journal rows ride on the next write: a statement that commits alone gets its
        "started" row with the previous write, and its "done" row with the next transaction."""
        for plan in runnable:
            if plan.progress.started:
                self._settle_uncertain(plan, dict(numbered_steps(plan.block)))
        units = {id(plan): split_block(plan, runs_alone=self.target.runs_alone) for plan in runnable}
        link_units([(plan, units[id(plan)]) for plan in runnable])
        return units

    def _run_block(self, plan: BlockPlan, units: list[Unit], position: int, count: int) -> None:
        block = plan.block
        started = self.clock()
        self.block_kind = block.kind
        self.emit(
            "migration-started",
            migration=block.migration,
            block=block.kind,
            position=position,
            count=count,
            resume_after=plan.resumes_after(),
        )
        numbered = numbered_steps(block)
        attempts = 1
        for unit in units:
            run = functools.partial(self._run_unit, plan, unit, len(numbered))
            attempts = max(
                attempts,
                self._with_retries(run, plan=plan, total=len(numbered), transactional=unit.kind == "transaction"),
            )
        self.emit(
            "migration-done",
            migration=block.migration,
            block=block.kind,
            elapsed=self.clock() - started,
            attempts=attempts,
        )

    def _settle_uncertain(self, plan: BlockPlan, steps: dict[int, Step]) -> None:
        """Statements that commit alone and whose last run ended between the statement and
        its journal row: drop what a failed attempt left (an INVALID index) and run again,
        or, when what the statement changes differs from before that attempt, count it done."""
        for index, before in sorted(plan.progress.started.items()):
            step = steps[index]
            leftover = self.target.leftover_of(step.sql)
            if leftover is not None:
                self.target.execute(leftover)
                self.emit("invalid-index-dropped", migration=plan.block.migration, sql=leftover)
                decision, done = "left an INVALID index, dropped it: will run again", False
            elif self.target.state_of(step.sql) != before:
                decision, done = (
                    "took effect before the last run ended (the objects it changes differ from "
                    "before it started): counted as done",
                    True,
                )
            else:
                decision, done = (
                    "had not taken effect (the objects it changes are as before it started): will run again",
                    False,
                )
            self.emit(
                "statement-took-effect",
                migration=plan.block.migration,
                index=index,
                total=len(steps),
                decision=decision,
            )
            if done:
                plan.progress.done.add(index)
                self.journal.write(self._statement_entry(plan, index, step, "done", 0, detail={"decided": decision}))

    # -- one unit, with retries ---------------------------------------------------------

    def _with_retries(
        self, run: Callable[[int], None], *, plan: BlockPlan | None, total: int, transactional: bool
    ) -> int:
        """``run(attempt)``, retried on lock timeouts; return the attempts it took. A
        ``transactional`` piece is rolled back whole when it fails."""
        first = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                run(attempt)
                return attempt
            except self.errors as exc:
                self._after_error(plan, total, attempt, first, exc, transactional=transactional)

    def _after_error(
        self, plan: BlockPlan | None, total: int, attempt: int, first: float, exc: BaseException, *, transactional: bool
    ) -> None:
        target = self.target
        migration = plan.block.migration if plan else None
        where = self.where
        message = target.params.error_text(exc)
        if target.is_connection_lost(exc):
            raise ConnectionLost(where=where, detail=message) from None
        target.rollback()
        index, step = self.current
        if not target.is_lock_timeout(exc):
            self._journal_failure(plan, index, step, attempt, message)
            raise StatementFailed(where=where, error=message, rolled_back=transactional) from None
        blockers = self._blockers(step)
        waited = self.clock() - first
        delay = self.options.backoff.delay(attempt, rng=self.rng)
        if attempt >= self.options.max_attempts or waited + delay > self.options.max_wait.total_seconds():
            self._journal_failure(plan, index, step, attempt, f"gave up on locks: {message}", blockers)
            raise GaveUpOnLocks(
                where=where,
                attempts=attempt,
                waited=waited,
                lock_timeout=self.options.lock_timeout.total_seconds(),
                blockers=[b.describe() for b in blockers],
            )
        self.emit(
            "lock-timeout",
            migration=migration,
            index=index,
            total=total,
            attempt=attempt,
            lock_timeout=self.options.lock_timeout.total_seconds(),
            retry_in=delay,
            blockers=[b.as_dict() for b in blockers],
        )
        after = self.options.cancel_blockers_after
        if after is not None and attempt >= after:
            self._act_on_blockers(migration, blockers)
        self.sleep(delay)

    def _journal_failure(
        self,
        plan: BlockPlan | None,
        index: int | None,
        step: Step | None,
        attempt: int,
        message: str,
        blockers: list[Blocker] | None = None,
    ) -> None:
        """Best effort, after the rollback: the failure is raised whether or not this lands."""
        if plan is None:
            return  # the run's start failed: there may be no journal yet
        detail = {"blockers": [b.as_dict() for b in blockers]} if blockers else None
        entry = (
            self._statement_entry(plan, index, step, "failed", attempt, error=message, detail=detail)
            if index is not None and step is not None
            else Entry(event="control", status="failed", migration=plan.block.migration, error=message)
        )
        try:
            self.journal.write(entry)
        except self.errors:
            pass

    def _blockers(self, step: Step | None) -> list[Blocker]:
        tables = tables_named_in(step.sql) if step else []
        try:
            with self._monitor() as monitor:
                return monitor.find_blockers(
                    waiting_session=self.target.session_id(), tables=tables, older_than=self.options.lock_timeout
                )
        except self.errors:
            return []

    @contextmanager
    def _monitor(self) -> Iterator[Target]:
        with self.monitor_lock:
            if self.monitor is None:
                self.monitor = self.target.open_monitor()
            yield self.monitor

    def _act_on_blockers(self, migration: str | None, blockers: list[Blocker]) -> None:
        threshold = self.options.terminate_idle_after
        for blocker in blockers:
            if not blocker.certain:
                continue
            idle = blocker.is_idle_in_transaction()
            if idle and (blocker.transaction_age or timedelta(0)) < threshold:
                continue
            action = "blocker-terminated" if idle else "blocker-cancelled"
            with self._monitor() as monitor:
                (monitor.terminate if idle else monitor.cancel)(blocker)
            self.journal.write(Entry(event=action, status="done", migration=migration, detail=blocker.as_dict()))
            self.emit(action, migration=migration, blocker=blocker.as_dict())

    # -- executing ---------------------------------------------------------------------

    def _run_unit(self, plan: BlockPlan, unit: Unit, total: int, attempt: int) -> None:
        target, options = self.target, self.options
        self.current = (None, None)
        self.where = plan.name
        if unit.kind == "manual-stop":
            step = unit.items[0][1]
            assert isinstance(step, Step)
            raise ManualStepPending(
                migration=str(plan.block.migration),
                op=int(step.op or 0),
                callable=str(step.callable),
                committed=len(plan.progress.done),
                command=self._run_python_command(manual_step_id(plan.block, step)),
            )
        if unit.kind == "control":
            self._control(plan, unit.items[0][1])
            return
        entries: list[Entry] = []
        done: list[int] = []
        if unit.kind == "transaction":
            target.begin_transaction(lock_timeout=options.lock_timeout, statement_timeout=options.statement_timeout)
        elif unit.kind == "alone":
            index, step = unit.items[0]
            assert isinstance(step, Step) and index is not None
            leftover = target.leftover_of(step.sql)
            if leftover is not None:  # a failed or interrupted concurrent build's INVALID index
                target.execute(leftover)
                self.emit("invalid-index-dropped", migration=plan.block.migration, sql=leftover)
            if leftover is not None or not (attempt == 1 and (plan.block.migration, index) in self.prestarted):
                self.journal.write(self._started_entry(plan, index, step, attempt))
            if target.blocks_nobody_while_waiting(step.sql):
                # CREATE INDEX CONCURRENTLY waits for older transactions, which blocks no
                # query of the application: a short lock timeout would only throw builds away.
                target.set_timeouts(
                    lock_timeout=options.concurrent_lock_timeout, statement_timeout=timedelta(0), local=False
                )
            else:
                target.set_timeouts(
                    lock_timeout=options.lock_timeout, statement_timeout=options.statement_timeout, local=False
                )
        for index, item in unit.items:
            if isinstance(item, Control):
                self._control(plan, item)
            elif isinstance(item, Step) and item.kind == "manual":
                status = "done" if manual_step_id(plan.block, item) in options.manual_steps_done else "skipped"
                entries.append(
                    Entry(
                        event="manual-step",
                        status=status,
                        migration=plan.block.migration,
                        statement_index=item.op,
                        detail={"callable": item.callable},
                    )
                )
                self.emit(
                    "manual-step",
                    migration=plan.block.migration,
                    step=item.op,
                    callable=item.callable,
                    status=f"{status} (as the operator said)",
                )
            elif isinstance(item, Step) and index is not None:
                entries.append(self._statement(plan, index, item, total, attempt))
                done.append(index)
        if unit.completes:
            entries.append(Entry(event="migration", status="done", migration=plan.block.migration, attempts=attempt))
        if unit.defer_done:
            self.carry.extend(entries)  # lost in a crash: then the "started" row decides
            entries = []
        if unit.prestart is not None:
            # The next statement commits alone: its "started" row, with the state it will
            # change (which is the state now), rides on this write.
            next_plan, next_index, next_step = unit.prestart
            entries.append(self._started_entry(next_plan, next_index, next_step, 1))
            self.prestarted.add((next_plan.block.migration, next_index))
        if unit.kind == "transaction":
            target.write_and_commit(*self.journal.insert(*self.carry, *entries))
            self.carry = []
        else:
            self.journal.write(*entries)
        plan.progress.done.update(done)

    def _run_python_command(self, step_id: str) -> str:
        alias = self.runbook.header.get("database", "default")
        backwards = " --backwards" if self.runbook.direction == "backwards" else ""
        return f"python manage.py byhand run-python {step_id} --database {alias}{backwards}"

    def _started_entry(self, plan: BlockPlan, index: int, step: Step, attempt: int) -> Entry:
        before = self.target.state_of(step.sql)
        return self._statement_entry(plan, index, step, "started", attempt, detail={"before": before})

    def _statement(self, plan: BlockPlan, index: int, step: Step, total: int, attempt: int) -> Entry:
        self.current = (index, step)
        self.where = f"{plan.name} statement {index}/{total}"
        summary = " ".join(step.sql.split())[:100]
        self.emit(
            "statement-started",
            migration=plan.block.migration,
            index=index,
            total=total,
            attempt=attempt,
            summary=summary,
        )
        started_at = datetime.now(timezone.utc)
        began = self.clock()
        if self.watcher is not None:
            self.watcher.watch(plan.block.migration, index, total, step)
        try:
            self.target.execute(step.sql)
        finally:
            if self.watcher is not None:
                self.watcher.watch(None, 0, 0, None)
        self.emit(
            "statement-done",
            migration=plan.block.migration,
            index=index,
            total=total,
            elapsed=self.clock() - began,
            summary=summary,
            attempt=attempt,
        )
        return self._statement_entry(plan, index, step, "done", attempt, started_at=started_at)

    def _statement_entry(
        self,
        plan: BlockPlan,
        index: int,
        step: Step,
        status: str,
        attempt: int,
        *,
        started_at: datetime | None = None,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Entry:
        now = datetime.now(timezone.utc)
        return Entry(
            event="statement",
            status=status,
            migration=plan.block.migration,
            statement_index=index,
            statement_hash=digest(step.sql),
            attempts=attempt,
            started_at=started_at or now,
            finished_at=now if status in {"done", "failed"} else None,
            error=error,
            detail=detail,
        )

    def _control(self, plan: BlockPlan, item: Item) -> None:
        assert isinstance(item, Control)
        rows = self.target.execute(item.sql.rstrip(";"))
        if item.sql == "PRAGMA foreign_key_check;" and rows:
            tables = sorted({str(row[0]) for row in rows})
            raise StatementFailed(
                where=f"{plan.name} foreign key check",
                error=f"{len(rows)} row(s) violate foreign keys in {', '.join(tables)}",
                rolled_back=True,
            )
