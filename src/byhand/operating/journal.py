"""The byhand_journal table: an append-only audit of every run, and what makes resuming exact.

One row per outcome, never updated: a run's start and end, each statement (done,
failed, or ``started`` for statements that commit alone and so cannot share a
transaction with their row), each migration done or skipped, each manual step
and each blocker cancelled. Statement rows of a migration count for resuming
only after its last migration row, so that a runbook applied, reversed and
applied again starts that migration from the top.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from byhand import __version__
from byhand.runbook import Step
from byhand.vendors.base import Column
from byhand.vendors.statements import digest
from byhand.vendors.target import Target

__all__ = ["COLUMNS", "DEFAULT_TABLE", "Entry", "Journal", "MigrationProgress", "RunSummary", "operator"]

DEFAULT_TABLE = "byhand_journal"

#: The journal's columns after its "id" key, rendered by each vendor (Vendor.table_ddl).
COLUMNS: tuple[Column, ...] = (
    ("run_id", "varchar(32)", False),
    ("event", "varchar(32)", False),
    ("status", "varchar(16)", False),
    ("runbook_checksum", "varchar(64)", False),
    ("migration", "varchar(255)", True),
    ("statement_index", "integer", True),
    ("statement_hash", "varchar(64)", True),
    ("attempts", "integer", False),
    ("started_at", "timestamp", False),
    ("finished_at", "timestamp", True),
    ("error", "text", True),
    ("operator", "varchar(255)", False),
    ("byhand_version", "varchar(32)", False),
    ("detail", "text", True),
)
_NAMES = tuple(name for name, _type, _null in COLUMNS)
#: The statuses of a run-python row that ends a run (its start is "started" or "forced").
_ENDS = ("done", "failed", "interrupted")


def operator() -> str:
    """Who runs byhand: the operating-system user at this host (never database credentials)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class Entry:
    """One journal row to write."""

    event: str  # run-started, run-finished, statement, migration, manual-step, blocker-cancelled, ...
    status: str  # done, failed, started, skipped, ...
    migration: str | None = None
    statement_index: int | None = None
    statement_hash: str | None = None
    attempts: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished_at: datetime | None = None
    error: str | None = None
    detail: dict[str, Any] | None = None


@dataclass
class MigrationProgress:
    """What the journal knows about one migration of this runbook since it was last completed."""

    done: set[int] = field(default_factory=set)  # statement indexes committed
    started: dict[int, str] = field(default_factory=dict)  # index -> state before an attempt whose end is unknown
    failed: tuple[int, str] | None = None  # last failed statement and its error
    manual_done: set[int] = field(default_factory=set)  # operation indexes of manual steps passed
    #: index -> SHA-256 of the statement as it ran (done) or was started: a re-signed
    #: runbook must hold the same statement there.
    hashes: dict[int, str] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    operator: str
    started_at: Any
    finished_at: Any
    outcome: str  # done, failed, gave-up, stopped, interrupted, running
    detail: dict[str, Any]


class Journal:
    """The journal of one database, written through ``target`` for one runbook."""

    def __init__(self, target: Target, *, table: str, checksum: str) -> None:
        self.target = target
        self.table = table
        self.checksum = checksum
        self.run_id = uuid.uuid4().hex
        self.operator = operator()
        #: Rows waiting for the next transaction (the "done" row of a statement that ran alone).
        self.carried: list[Entry] = []
        #: Statements whose "started" row an earlier write carried: (migration, index).
        self.prestarted: set[tuple[str | None, int]] = set()

    def rebound(self, target: Target) -> Journal:
        """The same run's journal, written through another connection."""
        other = Journal(target, table=self.table, checksum=self.checksum)
        other.run_id, other.operator = self.run_id, self.operator
        return other

    def ddl(self) -> str:
        return self.target.vendor.table_ddl(
            self.table, COLUMNS, index=f"{self.table}_runbook", indexed=("runbook_checksum", "migration")
        )

    def exists(self) -> bool:
        return self.target.has_table_to_read(self.table)

    def create(self) -> None:
        for statement in self.ddl().split(";\n"):
            self.target.execute(statement.rstrip(";"))

    def insert_sql(self, count: int = 1) -> str:
        columns = ", ".join(self.target.quote_name(c) for c in _NAMES)
        row = "(" + ", ".join(["%s"] * len(_NAMES)) + ")"
        return f"INSERT INTO {self.target.quote_name(self.table)} ({columns}) VALUES " + ", ".join([row] * count)

    def insert(self, *entries: Entry) -> tuple[str, list[Any]] | tuple[None, None]:
        """The one INSERT statement for ``entries`` and its parameters (None for no entries)."""
        if not entries:
            return None, None
        params: list[Any] = []
        for entry in entries:
            params.extend(self._values(entry))
        return self.insert_sql(len(entries)), params

    def write(self, *entries: Entry) -> None:
        """Insert ``entries`` in one statement, inside whatever transaction is open."""
        sql, params = self.insert(*entries)
        if sql is not None:
            self.target.execute(sql, params)

    def statement(
        self,
        migration: str | None,
        index: int,
        step: Step,
        status: str,
        attempt: int,
        *,
        started_at: datetime | None = None,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Entry:
        """The row of one statement's outcome (done, failed) or start."""
        now = datetime.now(timezone.utc)
        return Entry(
            event="statement",
            status=status,
            migration=migration,
            statement_index=index,
            statement_hash=digest(step.sql),
            attempts=attempt,
            started_at=started_at or now,
            finished_at=now if status in {"done", "failed"} else None,
            error=error,
            detail=detail,
        )

    def started(self, migration: str | None, index: int, step: Step, attempt: int) -> Entry:
        """The "started" row of a statement that commits alone, with the state of what it
        changes now (before it runs): after a crash, that state decides whether it ran."""
        before = self.target.state_of(step.sql)
        return self.statement(migration, index, step, "started", attempt, detail={"before": before})

    def _values(self, entry: Entry) -> tuple[Any, ...]:
        stamp = self.target.timestamp
        return (
            self.run_id,
            entry.event,
            entry.status,
            self.checksum,
            entry.migration,
            entry.statement_index,
            entry.statement_hash,
            entry.attempts,
            stamp(entry.started_at),
            stamp(entry.finished_at) if entry.finished_at else None,
            entry.error,
            self.operator,
            __version__,
            json.dumps(entry.detail, default=str) if entry.detail is not None else None,
        )

    # -- reading ---------------------------------------------------------------------

    def _rows(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """The rows matching ``where``, oldest first, as column -> value."""
        q = self.target.quote_name
        columns = ", ".join(q(c) for c in _NAMES)
        rows = self.target.execute(f"SELECT {columns} FROM {q(self.table)} WHERE {where} ORDER BY {q('id')}", params)
        return [dict(zip(_NAMES, row, strict=True)) for row in rows]

    def progress(self, *, lineage: Sequence[str] = ()) -> dict[str, MigrationProgress]:
        """Per migration of this runbook: statements done since it was last completed or
        skipped, by runs of this runbook or of those it replaces (``lineage``: the checksums
        its re-signatures replaced), in the order they happened."""
        found: dict[str, MigrationProgress] = {}
        if not self.exists():
            return found
        q = self.target.quote_name
        checksums = (self.checksum, *lineage)
        marks = ", ".join(["%s"] * len(checksums))
        rows = self._rows(f"{q('runbook_checksum')} IN ({marks}) AND {q('migration')} IS NOT NULL", checksums)
        for row in rows:
            event, status, migration, index = row["event"], row["status"], row["migration"], row["statement_index"]
            if event == "migration":
                found[migration] = MigrationProgress()  # completed (or skipped): start afresh next time
                continue
            progress = found.setdefault(migration, MigrationProgress())
            if event == "statement" and status in ("done", "started"):
                progress.hashes[index] = row["statement_hash"]
            if event == "statement" and status == "done":
                progress.done.add(index)
                progress.started.pop(index, None)
                if progress.failed and progress.failed[0] == index:
                    progress.failed = None
            elif event == "statement" and status == "started":
                progress.started[index] = json.loads(row["detail"] or "{}").get("before", "")
            elif event == "statement" and status == "failed":
                progress.started.pop(index, None)
                progress.failed = (index, row["error"] or "")
            elif event == "manual-step" and status in {"done", "skipped"}:
                progress.manual_done.add(index)
        return found

    def engine_note(self, migration: str | None, index: int, step: Step) -> dict[str, Any]:
        """What the last run of ``step`` through an engine noted before it started (the
        foreign keys it would rename), by a run of this runbook or of one signed again; {}
        when none did."""
        q = self.target.quote_name
        rows = self._rows(
            f"{q('migration')} = %s AND {q('statement_index')} = %s AND {q('statement_hash')} = %s "
            f"AND {q('status')} = %s",
            (migration, index, digest(step.sql), "engine"),
        )
        return dict(json.loads(rows[-1]["detail"] or "{}")) if rows else {}

    def last_python_run(self, migration: str, index: int) -> dict[str, Any] | None:
        """The latest finished run-python row (done, failed, interrupted) of manual step
        ``index`` of ``migration``, as column -> value; None when there is none, or when apply
        completed the migration after it (recorded it, or unrecorded it backwards): the
        database has since moved across the migration, so that run says nothing of it now."""
        if not self.exists():
            return None
        q = self.target.quote_name
        rows = self._rows(f"{q('migration')} = %s AND {q('event')} IN ('run-python', 'migration')", (migration,))
        last = None
        for row in rows:
            if row["event"] == "migration" and row["status"] == "done":
                last = None
            elif row["event"] == "run-python" and row["statement_index"] == index and row["status"] in _ENDS:
                last = row
        return last

    def runs(self, *, limit: int = 20) -> list[RunSummary]:
        """The latest runs against this database (of any runbook), newest first."""
        if not self.exists():
            return []
        q = self.target.quote_name
        rows = self._rows(f"{q('event')} IN ('run-started', 'run-finished')", ())
        runs: dict[str, RunSummary] = {}
        for row in rows:
            run_id, detail = row["run_id"], json.loads(row["detail"] or "{}")
            if row["event"] == "run-started":
                started = self.target.moment(row["started_at"])
                runs[run_id] = RunSummary(run_id, row["operator"], started, None, "running or crashed", detail)
            elif run_id in runs:
                # Runs journaled before finished_at was set on their end: the row's own time.
                runs[run_id].finished_at = self.target.moment(row["finished_at"] or row["started_at"])
                runs[run_id].outcome = row["status"]
                runs[run_id].detail.update(detail)
        return list(reversed(runs.values()))[:limit]
