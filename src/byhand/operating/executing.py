"""One unit of a block on the database: its statements, their journal rows, their events.

A unit runs once per attempt; when the database refuses it, UnitFailed says where (a
Position) and applying decides whether to try again. Statements that a crashed run left
uncertain are settled here too, before the run's units are made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from byhand.events import EventName
from byhand.exceptions import Interrupted, ManualStepPending, StatementFailed
from byhand.operating.journal import Entry, Journal
from byhand.operating.monitor import Watcher
from byhand.operating.preflight import BlockPlan, manual_step_id, numbered_steps
from byhand.operating.retrying import Limits
from byhand.operating.units import Unit
from byhand.runbook import Control, Item, Step
from byhand.vendors.pt_osc import EngineSettings, ForeignKey, PtOnlineSchemaChange, engine_for
from byhand.vendors.target import Target

__all__ = ["Position", "UnitFailed", "UnitRunner"]


@dataclass(frozen=True)
class Position:
    """Where a run is: at its start (no block), in a block, or at one of its statements."""

    plan: BlockPlan | None = None
    index: int | None = None  # the statement's number in its block, from 1
    total: int = 0  # the block's statements
    step: Step | None = None

    @classmethod
    def of_block(cls, plan: BlockPlan) -> Position:
        return cls(plan, total=len(numbered_steps(plan.block)))

    def at_statement(self, index: int, step: Step) -> Position:
        return Position(self.plan, index, self.total, step)

    @property
    def migration(self) -> str | None:
        return self.plan.block.migration if self.plan else None

    @property
    def where(self) -> str:
        """For messages: "shop.0002_x statement 1/3", "(setup)", "the run's start (journal)"."""
        if self.plan is None:
            return "the run's start (journal)"
        if self.index is None:
            return self.plan.name
        return f"{self.plan.name} statement {self.index}/{self.total}"

    def event_data(self) -> dict[str, Any]:
        """What every event about this position carries."""
        block = self.plan.block.kind if self.plan else "start"
        return {"block": block, "migration": self.migration, "index": self.index, "total": self.total}


class UnitFailed(Exception):
    """The database refused a unit at ``position`` (``error``: the driver's exception)."""

    def __init__(self, position: Position, error: BaseException) -> None:
        super().__init__(position.where, error)
        self.position = position
        self.error = error


class UnitRunner:
    """Runs units on ``target``, journaling through ``journal`` and reporting through ``emit``."""

    def __init__(
        self,
        target: Target,
        journal: Journal,
        *,
        limits: Limits,
        manual_steps_done: frozenset[str],
        run_python_command: Callable[[str], str],
        emit: Callable[..., None],
        clock: Callable[[], float],
        watcher: Watcher | None,
        engine: EngineSettings | None = None,
        statements: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.journal = journal
        self.limits = limits
        self.manual_steps_done = manual_steps_done
        self.run_python_command = run_python_command
        self.emit = emit
        self.clock = clock
        self.watcher = watcher
        self.engine = engine or EngineSettings()
        self.statements = statements  # the runbook's, for an engine
        self.errors = target.driver_errors()

    def run(self, plan: BlockPlan, unit: Unit, attempt: int) -> None:
        """One attempt at ``unit``; UnitFailed (where) when the database refuses it."""
        at = Position.of_block(plan)
        try:
            if unit.kind == "manual-stop":
                raise self._manual_stop(plan, unit)
            if unit.kind == "control":
                self._control(at, unit.items[0][1])
                return
            self._open(at, unit, attempt)
            entries: list[Entry] = []
            done: list[int] = []
            for index, item in unit.items:
                if isinstance(item, Control):
                    self._control(at, item)
                elif isinstance(item, Step) and item.kind == "manual":
                    entries.append(self._manual_passed(plan, item))
                elif isinstance(item, Step) and index is not None:
                    at = at.at_statement(index, item)
                    entries.append(self._statement(at, item, attempt))
                    done.append(index)
            self._close(plan, unit, attempt, entries)
            plan.progress.done.update(done)
        except self.errors as exc:
            raise UnitFailed(at, exc) from exc
        except KeyboardInterrupt as exc:
            raise Interrupted(at.where, reason=str(exc)) from None

    def _manual_stop(self, plan: BlockPlan, unit: Unit) -> ManualStepPending:
        step = unit.items[0][1]
        assert isinstance(step, Step)
        return ManualStepPending(
            migration=str(plan.block.migration),
            op=int(step.op or 0),
            callable=str(step.callable),
            committed=len(plan.progress.done),
            command=self.run_python_command(manual_step_id(plan.block, step)),
        )

    def _open(self, at: Position, unit: Unit, attempt: int) -> None:
        """BEGIN with local timeouts; or, for a statement that commits alone, its session
        timeouts, its "started" row, and the INVALID index a failed build left dropped."""
        limits, target = self.limits, self.target
        if unit.kind == "transaction":
            target.begin_transaction(lock_timeout=limits.lock_timeout, statement_timeout=limits.statement_timeout)
            return
        if unit.kind != "alone":
            return
        index, step = unit.items[0]
        assert isinstance(step, Step) and index is not None
        migration = at.migration
        leftover = target.leftover_of(step.sql)
        if leftover is not None:  # a failed or interrupted concurrent build's INVALID index
            target.execute(leftover)
            self.emit("invalid-index-dropped", **at.event_data(), sql=leftover)
        if leftover is not None or not (attempt == 1 and (migration, index) in self.journal.prestarted):
            self.journal.write(self.journal.started(migration, index, step, attempt))
        lock_timeout, statement_timeout = limits.for_statement(target, step.sql, step.observed)
        target.set_timeouts(lock_timeout=lock_timeout, statement_timeout=statement_timeout, local=False)

    def _close(self, plan: BlockPlan, unit: Unit, attempt: int, entries: list[Entry]) -> None:
        """Journal what the unit did: with its transaction's COMMIT, or alone; a statement
        alone before a transaction leaves its rows to that transaction, and the unit before
        a statement that commits alone writes that statement's "started" row."""
        journal = self.journal
        if unit.completes:
            entries.append(Entry(event="migration", status="done", migration=plan.block.migration, attempts=attempt))
        if unit.defer_done:
            journal.carried.extend(entries)  # lost in a crash: then the "started" row decides
            entries = []
        if unit.prestart is not None:
            next_plan, next_index, next_step = unit.prestart
            # The state it will change is the state now.
            entries.append(journal.started(next_plan.block.migration, next_index, next_step, 1))
            journal.prestarted.add((next_plan.block.migration, next_index))
        if unit.kind == "transaction":
            self.target.write_and_commit(*journal.insert(*journal.carried, *entries))
            journal.carried.clear()
        else:
            journal.write(*entries)

    def _manual_passed(self, plan: BlockPlan, step: Step) -> Entry:
        status = "done" if manual_step_id(plan.block, step) in self.manual_steps_done else "skipped"
        self.emit(
            "manual-step",
            migration=plan.block.migration,
            block=plan.block.kind,
            step=step.op,
            callable=step.callable,
            status=f"{status} (as the operator said)",
        )
        detail = {"callable": step.callable}
        return Entry("manual-step", status, migration=plan.block.migration, statement_index=step.op, detail=detail)

    def _statement(self, at: Position, step: Step, attempt: int) -> Entry:
        summary = " ".join(step.sql.split())[:100]
        where = at.event_data()
        self._emit("statement-started", where, attempt=attempt, summary=summary)
        started_at = datetime.now(timezone.utc)
        began = self.clock()
        engine = engine_for(self.target, step.online, self.engine, statements=self.statements)
        if engine is not None:
            self._through(engine, at, step, attempt, began)
        elif self.watcher is not None:
            with self.watcher.watching(where, step):
                self.target.execute(step.sql)
        else:
            self.target.execute(step.sql)
        self._emit("statement-done", where, elapsed=self.clock() - began, summary=summary, attempt=attempt)
        assert at.index is not None
        return self.journal.statement(at.migration, at.index, step, "done", attempt, started_at=started_at)

    def _through(self, engine: PtOnlineSchemaChange, at: Position, step: Step, attempt: int, began: float) -> None:
        """``step`` run by ``engine``, its progress as "waiting" events, the keys it will
        rename journaled before it starts (a run killed after its cut-over finishes from them)."""
        where = at.event_data()
        lock_timeout, _ = self.limits.for_statement(self.target, step.sql, step.observed)
        assert at.index is not None

        def report(text: str) -> None:
            self._emit("waiting", where, elapsed=self.clock() - began, progress=text, blockers=[])

        def note(detail: dict[str, Any]) -> None:
            self.journal.write(
                self.journal.statement(at.migration, at.index or 0, step, "engine", attempt, detail=detail)
            )

        engine.run(step.sql, where=at.where, lock_timeout=lock_timeout, report=report, note=note)

    def _control(self, at: Position, item: Item) -> None:
        assert isinstance(item, Control)
        rows = self.target.execute(item.sql.rstrip(";"))
        failure = self.target.vendor.control_failure(item.sql, rows)
        if failure is not None:
            what, error = failure
            raise StatementFailed(
                where=f"{at.plan.name if at.plan else at.where} {what}", error=error, rolled_back=True
            )

    def settle(self, plan: BlockPlan) -> None:
        """Statements that commit alone and whose last run ended between the statement and
        its journal row: drop what a failed attempt left (an INVALID index) and run again,
        or, when what the statement changes differs from before that attempt, count it done."""
        steps = dict(numbered_steps(plan.block))
        at = Position.of_block(plan)
        for index, before in sorted(plan.progress.started.items()):
            step = steps[index]
            engine = engine_for(self.target, step.online, self.engine)
            if engine is not None:
                self._settle_copy(engine, at.at_statement(index, step), step)
            leftover = self.target.leftover_of(step.sql)
            if leftover is not None:
                self.target.execute(leftover)
                self.emit("invalid-index-dropped", **at.event_data(), sql=leftover)
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
            self._emit("statement-took-effect", at.at_statement(index, step).event_data(), decision=decision)
            if done:
                plan.progress.done.add(index)
                entry = self.journal.statement(
                    plan.block.migration, index, step, "done", 0, detail={"decided": decision}
                )
                self.journal.write(entry)

    def _settle_copy(self, engine: PtOnlineSchemaChange, at: Position, step: Step) -> None:
        """What a killed run's copy left dropped, its keys given back their names (whether or
        not the copy was swapped in: the state of the table then says which)."""
        noted = self.journal.engine_note(at.migration, at.index or 0, step)
        keys = [ForeignKey.from_list(row) for row in noted.get("foreign_keys", [])]
        table = engine.table_of(step.sql)
        dropped = engine.clean(table, keys)
        if dropped:
            decision = f"its pt-online-schema-change run was cut short: dropped {', '.join(dropped)}"
            self._emit("statement-took-effect", at.event_data(), decision=decision)

    def _emit(self, name: EventName, where: dict[str, Any], **data: Any) -> None:
        self.emit(name, **where, **data)
