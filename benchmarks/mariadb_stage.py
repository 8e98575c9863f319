"""The database side of mariadb_build.py: the loaded table, each contender's command, its window and its attempts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchlib import BenchmarkError, Database, Run, apply_command, byhand_events, manage_env, run_timed
from online_stage import Outcome
from openloop import LEAD, under_load

__all__ = ["LEAD", "Attempts", "Build", "Contender", "Scenario", "attempts_of", "byhand_source", "end_statements"]

PROJECT = Path(__file__).resolve().parent / "mariabuild"
APP, TARGET, MIGRATION = "archive", "0002", "0002_document_title_slug_idx"
TABLE, INDEX = "archive_document", "archive_doc_title_slug_idx"
READ = f"SELECT id, title, slug, hits FROM {TABLE} WHERE id = %s"
UPDATE = f"UPDATE {TABLE} SET hits = hits + 1 WHERE id = %s"  # hits: not in the index
#: Random hexadecimal text, 190 characters a column (three SHA-256 digests, cut): keys of
#: 380 characters that sort in no order the table has.
FILL = (
    f"INSERT INTO {TABLE} (id, title, slug, hits) SELECT seq, "
    "LEFT(CONCAT(SHA2(CONCAT('t', seq), 256), SHA2(CONCAT('u', seq), 256), SHA2(CONCAT('v', seq), 256)), 190), "
    "LEFT(CONCAT(SHA2(CONCAT('s', seq), 256), SHA2(CONCAT('r', seq), 256), SHA2(CONCAT('q', seq), 256)), 190), 0 "
    "FROM seq_{first}_to_{last}"
)
FILL_CHUNK = 500_000
#: The statements of other sessions in the database whose text is LIKE one of the patterns.
_STATEMENTS = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID() AND ({})"


@dataclass(frozen=True)
class Scenario:
    rows: int
    read_rate: float
    update_rate: float
    threads: int
    give_up_after: float  # seconds: the benchmark stops a contender still running then


@dataclass(frozen=True)
class Contender:
    """``migrate``, or ``byhand apply`` of the plain or ``--online`` runbook with byhand from ``src``."""

    name: str
    src: Path  # put first on PYTHONPATH
    runbook: str | None = None  # "plain" or "online"; None: manage.py migrate


@dataclass
class Attempts:
    """What ``byhand apply --json`` said of the index's statement."""

    started: int = 0  # attempts begun (statement-started events of statement 1)
    lock_timeouts: int = 0
    reported: int | None = None  # migration-done's "attempts"
    failed_after: list[float] = field(default_factory=list)  # seconds into each attempt that timed out
    build_s: float | None = None  # the attempt that succeeded: statement-done's elapsed
    outcome: str | None = None  # run-finished's


def attempts_of(events: list[dict[str, Any]]) -> Attempts:
    result, began = Attempts(), {}
    for event in events:
        if event.get("index") not in (1, None):
            continue
        name = event["event"]
        if name == "statement-started":
            result.started += 1
            began[event["attempt"]] = datetime.fromisoformat(event["time"])
        elif name == "lock-timeout":
            result.lock_timeouts += 1
            start = began.get(event["attempt"])
            if start is not None:
                result.failed_after.append((datetime.fromisoformat(event["time"]) - start).total_seconds())
        elif name == "statement-done":
            result.build_s = event["elapsed"]
        elif name == "migration-done":
            result.reported = event["attempts"]
        elif name == "run-finished":
            result.outcome = event["outcome"]
    return result


def end_statements(database: Database, *patterns: str, what: str) -> None:
    """KILL QUERY the statements of other sessions in ``database`` whose text is LIKE one of
    ``patterns`` (a stopped contender's, which the server goes on running: ``what``), and
    wait for them to end; BenchmarkError after 60 s."""
    sql = _STATEMENTS.format(" OR ".join(["INFO LIKE %s"] * len(patterns)))
    params = (database.name, *patterns)
    for (thread,) in database.execute(sql, params):
        database.execute(f"KILL QUERY {int(thread)}")
    deadline = time.perf_counter() + 60
    while database.execute(sql, params):
        if time.perf_counter() > deadline:
            raise BenchmarkError(f"a stopped contender's {what} still runs after KILL QUERY and 60 s")
        time.sleep(0.2)


def byhand_source(src: Path) -> Path:
    """Where ``import byhand`` finds it with ``src`` first on PYTHONPATH; refuses another place."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import byhand; print(byhand.__file__)"
    found = Path(
        subprocess.run(
            [sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True
        ).stdout.strip()
    )
    if not found.is_relative_to(src.resolve()):
        raise BenchmarkError(f"PYTHONPATH={src}: byhand imports from {found}, not from there")
    return found


class Build:
    """The database, loaded once at archive.0001; each window starts from that schema again."""

    def __init__(self, database: Database, scenario: Scenario, *, head: Path, workdir: Path) -> None:
        self.database, self.scenario, self.head, self.workdir = database, scenario, head, workdir
        self.alone_s: float | None = None  # the index built with no load, once

    def env(self, src: Path) -> dict[str, str]:
        env = manage_env(self.database.url)
        env["PYTHONPATH"] = str(src)
        return env

    def manage(self, *args: str, timeout: float | None = None) -> Run:
        command = [sys.executable, "manage.py", *args]
        return run_timed(command, cwd=PROJECT, env=self.env(self.head), timeout=timeout)

    def prepare(self) -> None:
        """The database afresh at archive.0001, filled; both runbooks written; the index built once alone."""
        self.database.recreate()
        self.manage("migrate", APP, "0001").check("migrate to 0001")
        for first in range(1, self.scenario.rows + 1, FILL_CHUNK):
            last = min(first + FILL_CHUNK - 1, self.scenario.rows)
            self.database.execute(FILL.format(first=first, last=last))
        self.database.execute(f"ANALYZE TABLE {TABLE}")
        for kind in ("plain", "online"):
            runbook = self.runbook(kind)
            options = ["--online"] if kind == "online" else []
            self.manage("byhand", "sql", APP, TARGET, "-o", str(runbook), *options).check(f"byhand sql ({kind})")
        if "ALGORITHM=NOCOPY LOCK=NONE;" not in self.runbook("online").read_text(encoding="utf-8"):
            raise BenchmarkError(f"the --online runbook lacks ALGORITHM=NOCOPY LOCK=NONE:\n{self.statements('online')}")
        started = time.perf_counter()
        self.database.execute(f"CREATE INDEX `{INDEX}` ON `{TABLE}` (`title`, `slug`)")
        self.alone_s = time.perf_counter() - started
        self.reset()

    def runbook(self, kind: str) -> Path:
        return self.workdir / f"{MIGRATION}.{kind}.sql"

    def statements(self, kind: str) -> str:
        text = self.runbook(kind).read_text(encoding="utf-8")
        return "\n".join(line for line in text.splitlines() if line and not line.startswith("--"))

    def reset(self) -> None:
        """Back to 0001: no index, 0002 not recorded, an empty journal; checked."""
        self.database.execute(f"DROP INDEX IF EXISTS `{INDEX}` ON `{TABLE}`")
        self.database.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", (APP, MIGRATION))
        if self.database.scalar("SHOW TABLES LIKE 'byhand_journal'"):
            self.database.execute("DELETE FROM byhand_journal")
        if self.state() != (False, False):
            raise BenchmarkError(f"reset left (index, recorded) = {self.state()}")

    def state(self) -> tuple[bool, bool]:
        """(the index exists, 0002 is recorded)."""
        index = self.database.scalar(
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND INDEX_NAME = %s",
            (self.database.name, INDEX),
        )
        recorded = self.database.scalar(
            "SELECT COUNT(*) FROM django_migrations WHERE app = %s AND name = %s", (APP, MIGRATION)
        )
        return bool(index), bool(recorded)

    def run(self, contender: Contender, index: int) -> Outcome:
        """One timed window, from a reset schema."""
        self.reset()
        if contender.runbook is None:
            command = [sys.executable, "manage.py", "migrate", APP, TARGET]
        else:
            command = apply_command(self.runbook(contender.runbook), self.database.url, "--json")
        env = self.env(contender.src)

        def migrate() -> Run:
            migration = run_timed(command, cwd=PROJECT, env=env, timeout=self.scenario.give_up_after)
            if migration.returncode == -9:
                # before the load stops: the kill's rollback is in the window
                end_statements(self.database, f"%{INDEX}%", what="CREATE INDEX")
            return migration

        migration, load = under_load(self.database, self.scenario, read=READ, update=UPDATE, run=migrate)
        outcome = Outcome("add_index", contender.name, index, load.samples, load.failures, migration.seconds)
        outcome.events = byhand_events(migration.stdout) if contender.runbook else []
        outcome.failure = self._judge(migration)
        return outcome

    def _judge(self, migration: Run) -> str | None:
        if migration.returncode == -9:
            return f"still running after {self.scenario.give_up_after:g} s: stopped by the benchmark"
        if not migration.ok:
            return f"exited with {migration.returncode}: {migration.tail(3)}"
        if self.state() != (True, True):
            return f"exited 0 but (index, recorded) = {self.state()}"
        return None
