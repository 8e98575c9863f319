"""The database side of mariadb_copy.py: the loaded table, its schema, each contender's command and its window."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from benchlib import BenchmarkError, Database, Run, apply_command, byhand_events, manage_env, run_timed
from mariadb_stage import Scenario, end_statements
from online_stage import Outcome
from openloop import under_load

__all__ = ["CONTENDERS", "ENGINE", "OPERATIONS", "SWAPPED", "Copies", "online_contender"]

PROJECT = Path(__file__).resolve().parent / "mariacopy"
APP, TARGET, TABLE = "stock", "0002", "stock_item"
OPERATIONS = ("type_change", "set_not_null", "add_check", "add_index", "add_unique")
CONTENDERS = ("migrate", "byhand plain", "byhand online")
ENGINE = "pt-online-schema-change"
READ = f"SELECT id, code, qty, amount, note, hits FROM {TABLE} WHERE id = %s"
UPDATE = f"UPDATE {TABLE} SET hits = hits + 1 WHERE id = %s"  # hits: no operation touches it
#: Unique codes (add_unique), no NULL notes (set_not_null), amounts >= 0 (add_check).
FILL = (
    f"INSERT INTO {TABLE} (id, code, qty, amount, note, hits) SELECT seq, CONCAT('C', seq), seq % 1000, "
    "seq % 100000, CONCAT('note-', seq % 1000), 0 FROM seq_{first}_to_{last}"
)
FILL_CHUNK = 500_000
#: What a migration the benchmark stopped may still run in the server: its ALTER or CREATE
#: INDEX, or pt-online-schema-change's copying of chunks into _stock_item_new.
MIGRATION_STATEMENTS = ("ALTER TABLE%", "CREATE%INDEX%", f"%\\_{TABLE}\\_new%")
#: The form of each statement of an --online runbook: "online": {"form": "...", ...}.
FORM = re.compile(r'"online": \{"form": "([^"]+)"')
#: byhand apply's progress (a "waiting" event) once pt-online-schema-change swapped its copy in.
SWAPPED = f"{ENGINE}: Swapped original and new tables OK."
#: The tables that belong here: the big one, Django's and byhand's bookkeeping.
OURS = (TABLE, "django_migrations", "byhand_journal")
#: A line of SHOW CREATE TABLE: an index, a CHECK constraint, a column.
_INDEX = re.compile(r"^(?:UNIQUE )?KEY (`[^`]+`)")
_CHECK = re.compile(r"^CONSTRAINT (`[^`]+`) CHECK ")
_COLUMN = re.compile(r"^`[^`]+` ")
Schema = frozenset[tuple[str, str]]


def online_contender(options: str) -> str:
    """The name of a contender that applies the --online runbook with these apply options."""
    return f"byhand online {options}".strip()


class Copies:
    """The database, loaded once at stock.0001; each window starts from that schema again.

    The schema compared is (kind, text) rows: each line of SHOW CREATE TABLE (without its
    AUTO_INCREMENT), the app's recorded migrations, and what a copy can leave: triggers, and
    tables other than ours."""

    def __init__(self, database: Database, scenario: Scenario, workdir: Path, operations: list[str]) -> None:
        self.database, self.scenario, self.workdir, self.operations = database, scenario, workdir, operations
        self.start: Schema = frozenset()
        self.expected: dict[str, tuple[str, Schema]] = {}  # each operation's first schema after a success, and whose
        self.forms: dict[str, list[str]] = {}  # each operation's online runbook: the form of each statement
        self.loads: list[float] = []  # the 1-minute load average at each window's end

    def manage(self, operation: str, *args: str) -> Run:
        command = [sys.executable, "manage.py", *args]
        return run_timed(command, cwd=PROJECT, env=self._env(operation), timeout=self.scenario.give_up_after)

    def prepare(self) -> None:
        """The database afresh at stock.0001, filled; each operation's plain and --online runbooks written."""
        self.database.recreate()
        self.manage(OPERATIONS[0], "migrate", APP, "0001").check("migrate to 0001")
        for first in range(1, self.scenario.rows + 1, FILL_CHUNK):
            last = min(first + FILL_CHUNK - 1, self.scenario.rows)
            self.database.execute(FILL.format(first=first, last=last))
        self.database.execute(f"ANALYZE TABLE {TABLE}")
        self.start = self.schema()
        for operation in self.operations:
            for kind in ("plain", "online"):
                options = ["--online"] if kind == "online" else []
                args = ["byhand", "sql", APP, TARGET, "-o", str(self.runbook(operation, kind)), *options]
                self.manage(operation, *args).check(f"{operation}: byhand sql ({kind})")
            self.forms[operation] = FORM.findall(self.runbook(operation, "online").read_text(encoding="utf-8"))
            if not self.forms[operation]:
                raise BenchmarkError(f"{operation}: the --online runbook marks no statement with a form")

    def runbook(self, operation: str, kind: str) -> Path:
        return self.workdir / f"{operation}.{kind}.sql"

    def statements(self, operation: str, kind: str) -> str:
        text = self.runbook(operation, kind).read_text(encoding="utf-8")
        return "\n".join(line for line in text.splitlines() if line and not line.startswith("--"))

    def schema(self) -> Schema:
        ((_, create),) = self.database.execute(f"SHOW CREATE TABLE {TABLE}")
        rows = {
            ("create", re.sub(r" AUTO_INCREMENT=\d+", "", line.strip().rstrip(","))) for line in create.splitlines()
        }
        recorded = self.database.execute("SELECT name FROM django_migrations WHERE app = %s", (APP,))
        triggers = self.database.execute(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        tables = self.database.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            f"AND TABLE_NAME NOT IN ({', '.join(['%s'] * len(OURS))})",
            OURS,
        )
        rows |= {("recorded", name) for (name,) in recorded}
        rows |= {("trigger", name) for (name,) in triggers}
        rows |= {("table", name) for (name,) in tables}
        return frozenset(rows)

    def reset(self) -> None:
        """Back to the start: what a copy left dropped (triggers first), every column as it was,
        what was added dropped, 0002 unrecorded, the journal emptied; checked."""
        now = self.schema()
        clauses = []
        for kind, text in sorted(now ^ self.start, key=lambda row: row[0] != "trigger"):
            if (kind, text) in self.start and kind == "create" and _COLUMN.match(text):
                clauses.append(f"MODIFY {text}")
            elif (kind, text) in self.start and kind != "create":
                raise BenchmarkError(f"reset: {kind} {text} is gone")
            elif kind == "trigger":
                self.database.execute(f"DROP TRIGGER IF EXISTS `{text}`")
            elif kind == "table":
                self.database.execute(f"DROP TABLE IF EXISTS `{text}`")
            elif kind == "recorded":
                self.database.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", (APP, text))
            elif index := _INDEX.match(text):
                clauses.append(f"DROP INDEX {index.group(1)}")
            elif check := _CHECK.match(text):
                clauses.append(f"DROP CONSTRAINT {check.group(1)}")
            elif not _COLUMN.match(text):
                raise BenchmarkError(f"reset: no way back from {text!r}")
        if clauses:
            self.database.execute(f"ALTER TABLE {TABLE} {', '.join(clauses)}")
        if self.database.scalar("SHOW TABLES LIKE 'byhand_journal'"):
            self.database.execute("DELETE FROM byhand_journal")
        if (now := self.schema()) != self.start:
            raise BenchmarkError(f"reset left {sorted(now ^ self.start)}")

    def run(self, operation: str, contender: str, index: int) -> Outcome:
        """One timed window, from a reset schema."""
        self.reset()
        command, env = self._command(operation, contender), self._env(operation)

        def migrate() -> Run:
            migration = run_timed(command, cwd=PROJECT, env=env, timeout=self.scenario.give_up_after)
            if migration.returncode == -9:  # before the load stops: the kill's rollback is in the window
                end_statements(self.database, *MIGRATION_STATEMENTS, what="statement")
            return migration

        migration, load = under_load(self.database, self.scenario, read=READ, update=UPDATE, run=migrate)
        self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
        outcome = Outcome(operation, contender, index, load.samples, load.failures, migration.seconds)
        outcome.events = byhand_events(migration.stdout) if contender != "migrate" else []
        outcome.failure = self._judge(operation, contender, migration)
        return outcome

    def _command(self, operation: str, contender: str) -> list[str]:
        if contender == "migrate":
            return [sys.executable, "manage.py", "migrate", APP, TARGET]
        if contender == "byhand plain":
            return apply_command(self.runbook(operation, "plain"), self.database.url, "--json")
        options = shlex.split(contender.removeprefix(online_contender("")))
        return apply_command(self.runbook(operation, "online"), self.database.url, "--json", *options)

    def _judge(self, operation: str, contender: str, migration: Run) -> str | None:
        if migration.returncode == -9:
            return f"still running after {self.scenario.give_up_after:g} s: stopped by the benchmark"
        if not migration.ok:
            return f"exited with {migration.returncode}: {migration.tail(3)}"
        schema = self.schema()
        if left := sorted(f"{kind} {name}" for kind, name in schema if kind in ("trigger", "table")):
            return f"exited 0 but left {', '.join(left)}"
        if ("recorded", f"0002_{operation}") not in schema:
            return f"exited 0 but {APP}.0002_{operation} is not recorded"
        first, expected = self.expected.setdefault(operation, (contender, schema))
        if schema != expected:
            return f"schema differs from {first}'s: {sorted(schema ^ expected)}"
        return None

    def _env(self, operation: str) -> dict[str, str]:
        return {**manage_env(self.database.url), "MARIACOPY_OPERATION": operation}
