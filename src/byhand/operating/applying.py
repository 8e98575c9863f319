"""Execute a runbook: preflight, one operator at a time, block by block and unit by unit
with lock timeouts and retries, journaled so that any failed run resumes exactly where it
stopped.

The library reports through ``on_event`` and raises ByhandError subclasses; it never prints.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from byhand import __version__
from byhand.events import Event, EventName, EventSink
from byhand.exceptions import (
    ConnectionLost,
    GaveUpOnLocks,
    Interrupted,
    ManualStepPending,
    PoolerInTheWay,
    PreflightRefused,
    StatementFailed,
    VendorMismatch,
)
from byhand.operating.assessing import RiskLevel, Thresholds
from byhand.operating.executing import Position, UnitFailed, UnitRunner
from byhand.operating.journal import DEFAULT_TABLE, Entry, Journal
from byhand.operating.monitor import Monitor, Watcher
from byhand.operating.preflight import BlockPlan, check_runbook, numbered_steps, preflight_report
from byhand.operating.rereading import check_reads
from byhand.operating.retrying import Limits, RetryPolicy
from byhand.operating.reviewing import check_risk
from byhand.operating.run_lock import RUN_LOCK, RUN_LOCK_WAIT, describe_holder, run_lock
from byhand.operating.stop_rule import StopRule
from byhand.operating.units import Unit, link_units, split_block
from byhand.runbook import Control, Runbook
from byhand.vendors.pt_osc import EngineSettings, engine_for
from byhand.vendors.target import Target

__all__ = ["DEFAULT_LOCK_TIMEOUT", "ApplyOptions", "ApplyResult", "apply_runbook"]

#: 100 ms: each attempt can stall the table's queue for at most this long, and retries with
#: backoff land the migration within seconds of the blocker ending (benchmarks/lockstall.py).
#: MariaDB rounds it down to whole seconds: 0, i.e. NOWAIT.
DEFAULT_LOCK_TIMEOUT = timedelta(milliseconds=100)


@dataclass(frozen=True)
class ApplyOptions:
    lock_timeout: timedelta = DEFAULT_LOCK_TIMEOUT
    statement_timeout: timedelta | None = None
    #: For statements whose waiting blocks nobody (CREATE INDEX CONCURRENTLY): None = up to
    #: max_wait, 0 = no limit.
    concurrent_lock_timeout: timedelta | None = None
    max_attempts: int = 20
    max_wait: timedelta = timedelta(minutes=10)
    cancel_blockers_after: int | None = None
    terminate_idle_after: timedelta = timedelta(seconds=10)
    manual_steps_done: frozenset[str] = frozenset()
    skip_manual_steps: bool = False
    journal_table: str = DEFAULT_TABLE
    run_lock_wait: timedelta = RUN_LOCK_WAIT
    dry_run: bool = False
    #: Print and journal blockers' queries as they are, literals (maybe secrets) included.
    full_blocker_queries: bool = False
    #: Go on through a connection pooler the operator says keeps one server session per client.
    allow_session_pooler: bool = False
    #: Refuse before any change when a statement that would run is at this risk or above.
    refuse_risk: RiskLevel | None = None
    #: When a table is big, for that gate.
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: How pt-online-schema-change copies a table, for the statements an online runbook runs through it.
    engine: EngineSettings = field(default_factory=EngineSettings)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, max_wait=self.max_wait)

    def limits(self) -> Limits:
        return Limits(self.lock_timeout, self.statement_timeout, self.concurrent_lock_timeout, self.max_wait)


@dataclass
class ApplyResult:
    plans: list[BlockPlan]
    applied: int = 0
    skipped: int = 0
    elapsed: float = 0.0


@dataclass(frozen=True)
class _Services:
    """What a run reads the outside world through (injected in tests: no test waits)."""

    emit: EventSink
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    rng: Callable[[], float]


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
    if runbook.vendor != target.vendor.name:
        raise VendorMismatch(runbook=runbook.vendor, database=target.vendor.name)
    pooler = target.pooler_in_the_way()
    if pooler is not None and not options.allow_session_pooler:
        raise PoolerInTheWay(pooler)
    run = _Run(runbook, target, options, _Services(on_event, sleep, clock, rng))
    with ExitStack() as stack:
        stack.callback(run.close)
        with _refused_before_any_change(target):
            if not options.dry_run:
                stack.enter_context(run.lock())
            plans = run.preflight()
        if options.dry_run:
            run.note_lock_holder()
            return ApplyResult(plans=plans)
        return run.execute(plans)


def _check_engines(plans: list[BlockPlan], target: Target, settings: EngineSettings) -> None:
    """PreflightRefused when a statement an engine would run cannot run through it here.
    What a killed run's copy left on a table is not in the way: the run cleans it up first."""
    problems, checks, resumed = [], [], set()
    for plan in plans:
        for index, step in numbered_steps(plan.block) if plan.action == "run" else ():
            engine = engine_for(target, step.online, settings)
            if engine is not None and index not in plan.progress.done:
                checks.append((plan, index, step, engine))
                if index in plan.progress.started:
                    resumed.add(engine.table_of(step.sql))
    for plan, index, step, engine in checks:
        refusal = engine.refusal(step.sql, resuming=engine.table_of(step.sql) in resumed)
        if refusal is not None:
            problems.append(f"{plan.name} statement {index}: {refusal}")
    if problems:
        raise PreflightRefused(problems)


def _server_and_driver(target: Target) -> str:
    """ "mysql 10.11.9-MariaDB, driver PyMySQL 1.1.1", "postgresql 16.4"."""
    driver = target.driver_name()
    return f"{target.vendor.name} {target.server_version()}" + (f", driver {driver}" if driver else "")


@contextmanager
def _refused_before_any_change(target: Target) -> Iterator[None]:
    """Failures while taking the run lock or reading django_migrations and the journal."""
    try:
        yield
    except target.driver_errors() as exc:
        message = target.params.error_text(exc)
        raise PreflightRefused([f"the database refused a preflight query: {message}"]) from None
    except KeyboardInterrupt as exc:
        raise Interrupted("preflight (nothing was changed)", reason=str(exc)) from None


def _journal_elsewhere(journal: Journal, target: Target, entries: list[Entry]) -> None:
    """Write ``entries`` through a new connection to the same database (best effort: if
    that fails too, status shows the run as crashed)."""
    fresh = target.vendor.target(target.params)
    try:
        fresh.connect(application="byhand apply (journal)")
        journal.rebound(fresh).write(*entries)
    except Exception:  # noqa: BLE001 -- the database is out of reach: nothing more to do
        pass
    finally:
        fresh.close()


#: A run's outcome as the journal and status name it, by what ended it.
_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (ManualStepPending, "stopped"),
    (GaveUpOnLocks, "gave-up"),
    (ConnectionLost, "connection-lost"),
    (Interrupted, "interrupted"),
)


def _outcome(exc: BaseException) -> str:
    return next((outcome for kind, outcome in _OUTCOMES if isinstance(exc, kind)), "failed")


class _Run:
    def __init__(self, runbook: Runbook, target: Target, options: ApplyOptions, services: _Services) -> None:
        self.runbook = runbook
        self.target = target
        self.options = options
        self.services = services
        self.journal = Journal(target, table=options.journal_table, checksum=runbook.checksum())
        self.monitor = Monitor(target, full_queries=options.full_blocker_queries)
        self.watcher: Watcher | None = None
        self.stop_rule = StopRule(
            target,
            self.journal,
            self.monitor,
            retry=options.retry_policy(),
            limits=options.limits(),
            cancel_blockers_after=options.cancel_blockers_after,
            terminate_idle_after=options.terminate_idle_after,
            emit=self.emit,
            rng=services.rng,
        )

    def emit(self, name: EventName, **data: Any) -> None:
        self.services.emit(Event(name, data))

    def lock(self) -> AbstractContextManager[None]:
        services = self.services
        return run_lock(
            self.target,
            wait=self.options.run_lock_wait,
            holder=lambda: describe_holder(self.target, self.journal),
            clock=services.clock,
            sleep=services.sleep,
        )

    def note_lock_holder(self) -> None:
        holder = self.target.run_lock_holder(RUN_LOCK)
        if holder is not None:
            self.emit("preflight", text=f"note: another apply holds the run lock now: {holder}")

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.monitor.close()

    # -- before any change ---------------------------------------------------------------

    def preflight(self) -> list[BlockPlan]:
        recorded = self.target.recorded_migrations()
        plans = check_runbook(
            self.runbook,
            applied=recorded or set(),
            has_migrations_table=recorded is not None,
            progress=self.journal.progress(lineage=self.runbook.replaced()),
            manual_done=self.options.manual_steps_done,
            skip_manual=self.options.skip_manual_steps,
        )
        runbook, options, target, journal = self.runbook, self.options, self.target, self.journal
        checked = check_reads(plans, target, lock_timeout=options.lock_timeout, timeout=options.statement_timeout)
        lines = preflight_report(
            runbook,
            plans,
            checksum=journal.checksum,
            database=f"{target.params.display()} ({_server_and_driver(target)})",
            limits=f"lock timeout {target.lock_timeout_text(options.lock_timeout)}, up to {options.max_attempts} "
            f"attempts within {options.max_wait.total_seconds():g}s",
            dry_run=options.dry_run,
            journal_ddl=None if not options.dry_run or journal.exists() else journal.ddl(),
        )
        for line in lines + checked:
            self.emit("preflight", text=line)
        if options.refuse_risk is not None:
            self.emit("preflight", text=check_risk(runbook, plans, target, options))
        _check_engines(plans, self.target, self.options.engine)
        return plans

    # -- the run ---------------------------------------------------------------------------

    def execute(self, plans: list[BlockPlan]) -> ApplyResult:
        """Run every block the preflight said to run; journal how the run ended, whatever ended it."""
        result = ApplyResult(plans=plans, skipped=sum(p.action == "skip" for p in plans))
        started = self.services.clock()
        outcome, error = "done", None
        try:
            runner = self._start([p for p in plans if p.action == "skip"])
            runnable = [p for p in plans if p.action == "run"]
            units = self._units(runnable, runner)
            for number, plan in enumerate(runnable, start=1):
                self._run_block(plan, units[id(plan)], runner, number=number, count=len(runnable))
                result.applied += 1
        except BaseException as exc:
            raised = self._as_error(exc)
            outcome, error = _outcome(raised), str(raised)
            if raised is exc:
                raise
            raise raised from None
        finally:
            result.elapsed = self.services.clock() - started
            self._finish(outcome, error, f"{result.applied} applied, {result.skipped} skipped", result.elapsed)
        return result

    def _as_error(self, exc: BaseException) -> BaseException:
        """What the operator is told of what ended the run (the open transaction is rolled
        back by _finish): Ctrl-C and the database's refusals outside a unit become byhand's
        errors; anything else is raised as it is, and journaled as a failure."""
        if isinstance(exc, KeyboardInterrupt):  # between blocks, units are interrupted on their own
            return Interrupted(Position().where, reason=str(exc))
        if isinstance(exc, UnitFailed):  # settling a statement a crashed run left uncertain
            error = self.target.params.error_text(exc.error)
            return StatementFailed(where=exc.position.where, error=error, rolled_back=True)
        if isinstance(exc, self.target.driver_errors()):  # the session's timeouts, the preamble
            error = self.target.params.error_text(exc)
            return StatementFailed(where=Position().where, error=error, rolled_back=True)
        return exc

    def _start(self, skipped: list[BlockPlan]) -> UnitRunner:
        """Session timeouts and the runbook's preamble; the journal created if need be and
        the run's start journaled (one transaction where DDL allows, retried on lock
        timeouts); the watcher started. The runner that runs the units."""
        options, target, journal = self.options, self.target, self.journal
        target.set_timeouts(lock_timeout=options.lock_timeout, statement_timeout=options.statement_timeout, local=False)
        for item in self.runbook.preamble:
            if isinstance(item, Control):  # SQLite's PRAGMA legacy_alter_table = OFF
                target.execute(item.sql.rstrip(";"))
        self._retrying(lambda attempt: self._journal_start(skipped), at=Position(), transactional=True)
        self.emit("run-started", run=journal.run_id, operator=journal.operator, database=target.params.display())
        if target.vendor.watchable:
            self.watcher = Watcher(self.monitor, emit=self.emit, clock=self.services.clock)
            self.watcher.start()
        for plan in skipped:
            self.emit("migration-skipped", migration=plan.name, reason=plan.reason)
        return UnitRunner(
            target,
            journal,
            limits=options.limits(),
            manual_steps_done=options.manual_steps_done,
            run_python_command=self._run_python_command,
            emit=self.emit,
            clock=self.services.clock,
            watcher=self.watcher,
            engine=options.engine,
            statements=[step.sql for block in self.runbook.blocks for step in block.steps],
        )

    def _journal_start(self, skipped: list[BlockPlan]) -> None:
        journal, target = self.journal, self.target
        try:
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
            driver = target.driver_name()
            if driver is not None:
                detail["driver"] = driver
            entries = [Entry(event="run-started", status="running", detail=detail)]
            entries += [
                Entry("migration", "skipped", migration=p.block.migration) for p in skipped if p.block.migration
            ]
            target.write_and_commit(*journal.insert(*entries))
        except target.driver_errors() as exc:
            raise UnitFailed(Position(), exc) from exc

    def _units(self, runnable: list[BlockPlan], runner: UnitRunner) -> dict[int, list[Unit]]:
        """Every block's units, after settling statements a crashed run left uncertain, linked
        so that journal rows ride on the next write."""
        for plan in runnable:
            if plan.progress.started:
                try:
                    runner.settle(plan)
                except self.target.driver_errors() as exc:
                    raise UnitFailed(Position.of_block(plan), exc) from exc
        units = {id(plan): split_block(plan, runs_alone=self.target.runs_alone) for plan in runnable}
        link_units([(plan, units[id(plan)]) for plan in runnable])
        return units

    def _run_block(self, plan: BlockPlan, units: list[Unit], runner: UnitRunner, *, number: int, count: int) -> None:
        """Each unit of the block, retried as one piece."""
        block, at = plan.block, Position.of_block(plan)
        began = self.services.clock()
        try:
            resume_after = plan.resumes_after()
            self.emit(
                "migration-started",
                migration=block.migration,
                block=block.kind,
                position=number,
                count=count,
                resume_after=resume_after,
            )
            attempts = 1
            for unit in units:
                run = functools.partial(runner.run, plan, unit)
                attempts = max(attempts, self._retrying(run, at=at, transactional=unit.kind == "transaction"))
            elapsed = self.services.clock() - began
            self.emit("migration-done", migration=block.migration, block=block.kind, elapsed=elapsed, attempts=attempts)
        except KeyboardInterrupt as exc:
            raise Interrupted(at.where, reason=str(exc)) from None

    def _finish(self, outcome: str, error: str | None, summary: str, elapsed: float) -> None:
        """Journal how the run ended, whatever ended it: on a connection of its own when the
        run's was lost (the server ended the session, a signal closed it mid-query)."""
        journal = self.journal
        now = datetime.now(timezone.utc)
        end = Entry("run-finished", outcome, error=error, detail={"summary": summary}, finished_at=now)
        try:
            self.target.rollback()  # whatever a failure left open
            journal.write(*journal.carried, end)
        except Exception:  # noqa: BLE001 -- the connection is gone: journal on a new one
            _journal_elsewhere(journal, self.target, [*journal.carried, end])
        try:
            self.emit("run-finished", run=journal.run_id, outcome=outcome, elapsed=elapsed, summary=summary)
        except KeyboardInterrupt:
            pass  # the output closed at the very end: the journal has the outcome

    def _run_python_command(self, step_id: str) -> str:
        alias = self.runbook.header.get("database", "default")
        backwards = " --backwards" if self.runbook.direction == "backwards" else ""
        return f"python manage.py byhand run-python {step_id} --database {alias}{backwards}"

    # -- retrying ------------------------------------------------------------------------

    def _retrying(self, run: Callable[[int], None], *, at: Position, transactional: bool) -> int:
        """``run(attempt)`` until it succeeds; return the attempts it took. A lock timeout is
        tried again after a delay; anything else, or too many lock timeouts, ends the run."""
        first = self.services.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                run(attempt)
                return attempt
            except UnitFailed as exc:
                failed = exc
                waited = self.services.clock() - first
                delay = self.stop_rule.delay_after(failed, attempt, waited, transactional=transactional)
            try:
                self.services.sleep(delay)
            except KeyboardInterrupt as exc:
                raise Interrupted(failed.position.where, reason=str(exc)) from None
