"""The database side of online_load.py: the loaded tables, their schema, each contender's command and its window."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchlib import BenchmarkError, Database, Run, apply_command, byhand_events, manage_env, percentile, run_timed
from openloop import Failure, Sample, under_load

__all__ = ["CONTENDERS", "OPERATIONS", "Outcome", "Scenario", "Stage"]

PROJECT = Path(__file__).resolve().parent / "onlineload"
APP, TARGET = "ledger", "0002"
TABLE = "ledger_entry"
OPERATIONS = ("add_index", "add_unique", "add_fk", "set_not_null", "add_check")
CONTENDERS = ("migrate", "byhand plain", "byhand online", "zero-downtime")
ZERO_DOWNTIME_ENGINE = "django_zero_downtime_migrations.backends.postgres"
#: What each operation's --online runbook must hold, outside comments.
ONLINE_FORMS = {
    "add_index": ("CREATE INDEX CONCURRENTLY",),
    "add_unique": ("CREATE UNIQUE INDEX CONCURRENTLY", "UNIQUE USING INDEX"),
    "add_fk": ("FOREIGN KEY", "NOT VALID", "VALIDATE CONSTRAINT"),
    "set_not_null": ('CONSTRAINT "byhand_nn_', "NOT VALID", "VALIDATE CONSTRAINT", "SET NOT NULL"),
    "add_check": ("CHECK", "NOT VALID", "VALIDATE CONSTRAINT"),
}
MIGRATION_TIMEOUT = 900.0
READ = f"SELECT id, account_id, code, amount, note, hits FROM {TABLE} WHERE id = %s"
UPDATE = f"UPDATE {TABLE} SET hits = hits + 1 WHERE id = %s"
ACCOUNTS = 1000
FILL = (
    f"INSERT INTO ledger_account (id, name) SELECT g, 'account-' || g FROM generate_series(1, {ACCOUNTS}) g",
    f"INSERT INTO {TABLE} (id, account_id, code, amount, note, hits) SELECT g, g % {ACCOUNTS} + 1, 'E' || g, "
    "g % 100000, 'note-' || g % 1000, 0 FROM generate_series(1, {rows}) g",
    "VACUUM ANALYZE ledger_account",
    f"VACUUM ANALYZE {TABLE}",
)
#: The schema that matters, as (kind, name, detail) rows: the table's indexes (valid or
#: not), constraints (type, validated or not), NOT NULL columns, and the app's recorded migrations.
SCHEMA = f"""
SELECT 'index', c.relname::text, CASE WHEN i.indisvalid THEN 'valid' ELSE 'INVALID' END
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '{TABLE}'::regclass
UNION ALL SELECT 'constraint', conname::text, contype::text || CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END
  FROM pg_constraint WHERE conrelid = '{TABLE}'::regclass
UNION ALL SELECT 'not null', attname::text, '' FROM pg_attribute
  WHERE attrelid = '{TABLE}'::regclass AND attnum > 0 AND attnotnull AND NOT attisdropped
UNION ALL SELECT 'recorded', name::text, '' FROM django_migrations WHERE app = '{APP}'
"""
Schema = frozenset[tuple[str, str, str]]


@dataclass(frozen=True)
class Scenario:
    rows: int
    read_rate: float
    update_rate: float
    threads: int
    zero_downtime_path: str | None  # a directory holding django_zero_downtime_migrations


@dataclass
class Outcome:
    """One window: every query's latency (from its due time), the failed queries, the migration's fate."""

    operation: str
    contender: str
    round: int
    samples: list[Sample] = field(repr=False)
    failures: list[Failure]
    migration_seconds: float | None = None
    failure: str | None = None  # the contender's, not the load's
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)  # byhand apply --json

    def raw(self) -> dict[str, Any]:
        """For a JSON file: the failed queries, every query's [stream, due s, latency ms], byhand's events."""
        return {
            "failures": [asdict(failure) for failure in self.failures],
            "samples": [[s.stream, round(s.due, 4), round(1000 * s.latency, 3)] for s in self.samples],
            "events": self.events,
        }

    def summary(self) -> dict[str, Any]:
        ms = [1000 * sample.latency for sample in self.samples]
        updates = [1000 * sample.latency for sample in self.samples if sample.stream == "update"]
        return {
            "p50_ms": percentile(ms, 0.50),
            "p99_ms": percentile(ms, 0.99),
            "max_ms": percentile(ms, 1.0),
            "max_update_ms": percentile(updates, 1.0),
            "over_100ms": sum(m > 100 for m in ms),
            "over_1s": sum(m > 1000 for m in ms),
            "queries": len(ms),
            "failed": len(self.failures),
            "migration_s": self.migration_seconds,
        }


class Stage:
    """The database, loaded once at 0001; each window starts from that schema again."""

    def __init__(self, database: Database, scenario: Scenario, workdir: Path) -> None:
        self.database, self.scenario, self.workdir = database, scenario, workdir
        self.start: Schema = frozenset()
        self.expected: dict[str, Schema] = {}  # each operation's schema after the first migrate that succeeded
        self.runbooks: dict[str, str] = {}  # each operation's first --online runbook

    def manage(self, operation: str, *args: str, zero_downtime: bool = False) -> Run:
        command = [sys.executable, "manage.py", *args]
        return run_timed(command, cwd=PROJECT, env=self._env(operation, zero_downtime), timeout=MIGRATION_TIMEOUT)

    def prepare(self) -> None:
        """The database afresh, at ledger.0001, its tables filled."""
        self.database.recreate()
        self.manage(OPERATIONS[0], "migrate", APP, "0001").check("migrate to 0001")
        for sql in FILL:
            self.database.execute(sql.format(rows=self.scenario.rows))
        self.start = self.schema()

    def schema(self) -> Schema:
        return frozenset(tuple(row) for row in self.database.execute(SCHEMA))

    def reset(self) -> None:
        """Back to the start: drop what a contender added, whatever its state, and checkpoint."""
        for kind, name, _detail in sorted(self.schema() - self.start, key=lambda row: row[0] != "constraint"):
            if kind == "constraint":
                self.database.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS "{name}"')
            elif kind == "index":  # after the constraints: a unique constraint's index goes with it
                self.database.execute(f'DROP INDEX IF EXISTS "{name}"')
            elif kind == "not null":
                self.database.execute(f'ALTER TABLE {TABLE} ALTER COLUMN "{name}" DROP NOT NULL')
            else:
                self.database.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", (APP, name))
        if (now := self.schema()) != self.start:
            raise BenchmarkError(f"reset left {sorted(now ^ self.start)}")
        self.database.execute("CHECKPOINT")

    def run(self, operation: str, contender: str, index: int) -> Outcome:
        """One timed window (reset and runbook written first, outside it)."""
        self.reset()
        command, env = self._command(operation, contender)
        migration, load = under_load(
            self.database,
            self.scenario,
            read=READ,
            update=UPDATE,
            run=lambda: run_timed(command, cwd=PROJECT, env=env, timeout=MIGRATION_TIMEOUT),
        )
        outcome = Outcome(operation, contender, index, load.samples, load.failures, migration.seconds)
        if contender.startswith("byhand"):
            outcome.events = byhand_events(migration.stdout)
        outcome.failure = self._judge(operation, migration)
        return outcome

    def _command(self, operation: str, contender: str) -> tuple[list[str], dict[str, str]]:
        zero_downtime = contender == "zero-downtime"
        env = self._env(operation, zero_downtime)
        if contender in ("migrate", "zero-downtime"):
            return [sys.executable, "manage.py", "migrate", APP, TARGET], env
        online = contender == "byhand online"
        runbook = self.workdir / f"{operation}.{'online' if online else 'plain'}.sql"
        runbook.unlink(missing_ok=True)
        args = ["byhand", "sql", APP, TARGET, "-o", str(runbook), *(["--online"] if online else [])]
        self.manage(operation, *args).check(f"{operation}: byhand sql")
        if online:
            self._check_online(operation, runbook.read_text(encoding="utf-8"))
        return apply_command(runbook, self.database.url, "--json"), env

    def _check_online(self, operation: str, text: str) -> None:
        statements = "\n".join(line for line in text.splitlines() if line and not line.startswith("--"))
        missing = [form for form in ONLINE_FORMS[operation] if form not in statements]
        if missing:
            raise BenchmarkError(f"{operation}: the --online runbook lacks {missing}:\n{statements}")
        self.runbooks.setdefault(operation, statements)

    def _judge(self, operation: str, migration: Run) -> str | None:
        if not migration.ok:
            return f"exited with {migration.returncode}: {migration.tail(3)}"
        schema = self.schema()
        if ("recorded", f"0002_{operation}", "") not in schema:
            return f"exited with 0 but {APP}.0002_{operation} is not recorded"
        expected = self.expected.setdefault(operation, schema)
        if schema != expected:
            return f"schema differs from migrate's: {sorted(schema ^ expected)}"
        return None

    def _env(self, operation: str, zero_downtime: bool) -> dict[str, str]:
        env = manage_env(self.database.url)
        env["ONLINELOAD_OPERATION"] = operation
        if zero_downtime:
            path = self.scenario.zero_downtime_path
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
            env["ONLINELOAD_ENGINE"] = ZERO_DOWNTIME_ENGINE
        return env
