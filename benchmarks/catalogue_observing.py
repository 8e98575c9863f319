"""What a runbook's statements really do on a populated database, watched from other sessions.

Used by review_catalogue.py. Each observer runs one migration block of a runbook as
``byhand apply`` would (PostgreSQL: BEGIN ... COMMIT around an atomic block; MariaDB:
statement by statement) on session A and watches it:

PostgreSQL
    locks     the (table, mode) pairs A holds after the statement or was seen holding while
              it ran (pg_locks, polled every 20 ms from session M), minus those it held before
              it, on tables that existed before it (A's own view: a table an earlier statement
              of the same transaction created counts), as byhand's "observed" defines them;
    rewrites  tables whose pg_class.relfilenode changed (A's view);
              Outside a transaction (CREATE INDEX CONCURRENTLY) the locks go with the
              statement, so only polling sees them: M polls without pause there, and a
              statement that ended before three polls did has its locks "not observed";
    scan      whether it read every row of a table: at least half the populated rows of a
              table that has rows (pg_stat_user_tables, what other backends flushed, the
              parallel workers of an index build included, plus A's own pending counts,
              pg_stat_xact_user_tables), or a scan of an empty table (one created in the
              block, or empty when it began) that A started (A's own counts, inside a
              transaction);
    blocks    session B, with lock_timeout 300ms, on each table locked by A that B can see:
              ``SELECT 1 FROM t LIMIT 1`` and an ``INSERT`` of a copy of one row, rolled
              back; probed while the statement runs when it lasts more than 200 ms, else
              (inside a transaction, where the locks stay until COMMIT) right after it.
              Blocked: the probe timed out, or ended only after the statement did (not
              known when the statement ended less than 0.1 s after the probe began).

MariaDB
    algorithm, lock
              the cheapest ALGORITHM (INSTANT, NOCOPY, INPLACE, COPY) and, with it, the
              weakest LOCK (NONE, SHARED, EXCLUSIVE) the server accepts for the statement on
              the populated table, found without running it: session B holds a shared write
              metadata lock on the table (an open transaction's ``UPDATE ... WHERE 1 = 0``),
              A sets lock_wait_timeout to 0 and tries each combination; a refusal comes back
              at once as error 1845/1846, an accepted combination stops at the metadata lock
              (error 1205). SHOW CREATE TABLE is compared before and after the probes. A
              ``DROP INDEX i ON t`` is probed as ``ALTER TABLE t DROP INDEX i``, which
              MariaDB maps it to (its own grammar refuses ALGORITHM=INSTANT);
    rewrites  tables whose InnoDB TABLE_ID changed (information_schema.INNODB_SYS_TABLES):
              the table was rebuilt, by COPY or by an INPLACE rebuild;
    blocks    the plain statement (as written in the runbook, no clause added) runs on A;
              after 300 ms, if still running, B (lock_wait_timeout 1) reads one row of the
              table, then inserts a copy of one, each in a transaction rolled back: blocked
              as on PostgreSQL.
"""

from __future__ import annotations

import random
import re
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchlib import Database

__all__ = ["MariadbObserver", "Observation", "PostgresObserver", "statement_table"]

POLL_SECONDS = 0.02
PROBE_AFTER = {"postgresql": 0.2, "mysql": 0.3}

# PostgreSQL's table-level lock conflicts (docs, "Table-Level Locks"), for the modes a
# SELECT (AccessShareLock), an INSERT (RowExclusiveLock) and its foreign-key checks
# (RowShareLock on the referenced table) take.
PG_CONFLICTS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"},
}

MARIADB_ALGORITHMS = ("INSTANT", "NOCOPY", "INPLACE", "COPY")
MARIADB_LOCKS = ("NONE", "SHARED", "EXCLUSIVE")
_REFUSED = {1845, 1846}  # ER_ALTER_OPERATION_NOT_SUPPORTED(_REASON)
_LOCK_WAIT_TIMEOUT = 1205


Probe = tuple[bool, float, float]  # (timed out, when it started, when it ended: time.perf_counter())
Blocks = dict[str, dict[str, bool | None]]  # table -> {"select"/"insert": blocked, None: not probed}


@dataclass
class Observation:
    """What one schema statement did, as watched."""

    sql: str
    seconds: float = 0.0
    error: str | None = None
    locks: set[tuple[str, str]] = field(default_factory=set)  # PostgreSQL
    algorithm: str | None = None  # MariaDB
    lock: str | None = None  # MariaDB
    probe_note: str | None = None  # MariaDB: what the probes saw besides the answer
    rewrites: set[str] = field(default_factory=set)
    scan: bool | None = None  # None: not observed (MariaDB)
    blocks: Blocks = field(default_factory=dict)
    blocks_when: str = ""  # "during", "after" or "" (not probed: too short)
    locks_watched: bool = True  # False: too short outside a transaction for polling to see
    aliases: dict[str, str] = field(default_factory=dict)  # a table's name after it -> before it
    fk_parents: dict[str, set[str]] = field(default_factory=dict)  # PostgreSQL, for the INSERT probe


def _random_suffix() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=3))


def _perturb(value: Any) -> Any:
    """A copied row's text values changed at the end, so that a unique text column takes it."""
    if isinstance(value, str) and len(value) >= 4:
        return value[:-3] + _random_suffix()
    return value


Probe = tuple[bool, float, float]  # (timed out, when it started, when it ended: time.perf_counter())


def _settle(probes: dict[str, dict[str, Probe | None]], statement_end: float | None) -> Blocks:
    """Blocked: timed out, or still waiting when the statement ended (a probe the statement
    let through only when it ended waited for it), unless the statement ended less than
    0.1 s after the probe began (it may have waited only for the statement's last step:
    not known, None). ``statement_end`` None: A was holding its locks idle in its
    transaction, which only a timeout can show."""

    def blocked(probe: Probe | None) -> bool | None:
        if probe is None:
            return None
        timed_out, started, ended = probe
        if timed_out or statement_end is None or ended < statement_end:
            return timed_out
        return True if statement_end - started >= 0.1 else None

    return {table: {kind: blocked(probe) for kind, probe in results.items()} for table, results in probes.items()}


class _Runner(threading.Thread):
    """Runs one statement on a connection in a thread, timing it."""

    def __init__(self, execute: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._execute = execute
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.started = time.perf_counter()

    def run(self) -> None:
        self.started = time.perf_counter()
        try:
            self._execute()
        except BaseException as exc:  # noqa: BLE001 - reported with the observation
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - self.started


class PostgresObserver:
    """Session A runs the runbook; M reads pg_locks; B probes for blocking."""

    def __init__(self, database: Database, *, rows: int) -> None:
        self.database = database
        self.threshold = max(1, rows // 2)
        self.a = database.connect()
        self.m = database.connect()
        self.b = database.connect()
        self.b.autocommit = False
        self.pid = self._one(self.a, "SELECT pg_backend_pid()")[0][0]
        self.in_transaction = False
        self.tables_at_start: dict[int, str] = {}
        self.fk_parents: dict[int, set[int]] = {}
        self.insert_probes: dict[int, tuple[str, tuple[Any, ...]]] = {}
        self.empty_at_start: set[int] = set()

    def close(self) -> None:
        for connection in (self.a, self.m, self.b):
            connection.close()

    @staticmethod
    def _one(connection: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = connection.cursor()
        cursor.execute(sql, params) if params else cursor.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []

    def begin_block(self) -> None:
        """What B sees before the block: its tables, their foreign keys, a row of each to copy."""
        tables = self._one(
            self.b,
            "SELECT c.oid, c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
            " AND c.relkind IN ('r', 'p')",
        )
        self.tables_at_start = {oid: name for oid, name in tables}
        self.fk_parents = {}
        for child, parent in self._one(self.b, "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f'"):
            self.fk_parents.setdefault(child, set()).add(parent)
        self.insert_probes = {}
        self.empty_at_start = set()
        for oid, name in tables:
            columns = [
                row[0]
                for row in self._one(
                    self.b,
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped"
                    " AND attgenerated = '' AND attidentity = '' ORDER BY attnum",
                    (oid,),
                )
            ]
            if not columns:
                continue
            quoted = ", ".join(f'"{column}"' for column in columns)
            sample = self._one(self.b, f'SELECT {quoted} FROM "{name}" LIMIT 1')
            if not sample:
                self.empty_at_start.add(oid)
            else:
                placeholders = ", ".join(["%s"] * len(columns))
                values = tuple(_perturb(value) for value in sample[0])
                self.insert_probes[oid] = (f'INSERT INTO "{name}" ({quoted}) VALUES ({placeholders})', values)
        self.b.rollback()

    def execute(self, sql: str) -> None:
        """A control or bookkeeping statement, not watched."""
        self._one(self.a, sql)
        head = sql.strip().upper()
        if head.startswith("BEGIN"):
            self.in_transaction = True
        elif head.startswith(("COMMIT", "ROLLBACK")):
            self.in_transaction = False

    def _tables(self) -> dict[int, tuple[str, int]]:
        rows = self._one(
            self.a,
            "SELECT c.oid, c.relname, c.relfilenode FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')",
        )
        return {oid: (name, node) for oid, name, node in rows}

    def _locks(self) -> set[tuple[int, str]]:
        rows = self._one(
            self.m,
            "SELECT relation, mode FROM pg_locks WHERE pid = %s AND locktype = 'relation' AND granted",
            (self.pid,),
        )
        return {(oid, mode) for oid, mode in rows}

    def _reads(self) -> dict[int, int]:
        """Rows read per table so far: the flushed counts (other backends, and the parallel
        workers of an index build, which flush when they exit) plus A's own pending ones."""
        if not self.in_transaction:
            self._one(self.a, "SELECT pg_stat_force_next_flush()")
        self._one(self.a, "SELECT pg_stat_clear_snapshot()")
        reads: dict[int, int] = {}
        views = ["pg_stat_user_tables"] + (["pg_stat_xact_user_tables"] if self.in_transaction else [])
        for view in views:
            rows = self._one(
                self.a, f"SELECT relid, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM {view}"
            )
            for oid, count in rows:
                reads[oid] = reads.get(oid, 0) + count
        return reads

    def _scans(self) -> dict[int, int]:
        """Scans A started on each table in its transaction (its own pending counts)."""
        if not self.in_transaction:
            return {}
        rows = self._one(self.a, "SELECT relid, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables")
        return {oid: count for oid, count in rows}

    def observe(self, sql: str) -> Observation:
        observation = Observation(sql=sql)
        tables, held, reads, scans = self._tables(), self._locks(), self._reads(), self._scans()
        seen: set[tuple[int, str]] = set()
        probes: dict[str, dict[str, Probe | None]] | None = None
        runner = _Runner(lambda: self._one(self.a, sql))
        polls = 0  # reads of pg_locks that ended while the statement still ran
        runner.start()
        while runner.is_alive():
            seen |= self._locks()
            polls += runner.is_alive()
            if probes is None and time.perf_counter() - runner.started > PROBE_AFTER["postgresql"]:
                if runner.is_alive():
                    probes = self._probe(seen | held)
            runner.join(POLL_SECONDS if self.in_transaction else 0)  # outside one, the locks go with it
        observation.seconds = runner.seconds
        if probes is not None:
            observation.blocks_when = "during"
            observation.blocks = _settle(probes, runner.started + runner.seconds)
        if runner.error is not None:
            observation.error = f"{type(runner.error).__name__}: {runner.error}".strip()
            return observation
        observation.locks_watched = self.in_transaction or polls >= 3
        if runner.seconds > 0.1:
            time.sleep(0.05)  # an index build's parallel workers flush their counts as they exit
        after_tables, after_locks = self._tables(), self._locks()
        seen |= after_locks
        observation.locks = {(tables[oid][0], mode) for oid, mode in seen - held if oid in tables}
        for oid, (name, node) in tables.items():
            if oid in after_tables:
                new_name, new_node = after_tables[oid]
                if new_node != node:
                    observation.rewrites.add(name)
                if new_name != name:
                    observation.aliases[new_name] = name
        after_reads, after_scans = self._reads(), self._scans()
        empty = {oid for oid in tables if oid in self.empty_at_start or oid not in self.tables_at_start}
        observation.scan = any(
            after_scans.get(oid, 0) > scans.get(oid, 0)
            if oid in empty
            else after_reads.get(oid, 0) - reads.get(oid, 0) >= self.threshold
            for oid in tables
        )
        if not observation.blocks_when and self.in_transaction:
            observation.blocks_when = "after"
            observation.blocks = _settle(self._probe(after_locks), None)
        observation.fk_parents = {
            self.tables_at_start[child]: {self.tables_at_start[p] for p in parents if p in self.tables_at_start}
            for child, parents in self.fk_parents.items()
            if child in self.tables_at_start
        }
        return observation

    def probe_tables(self, locked: set[tuple[int, str]]) -> list[int]:
        return sorted({oid for oid, _mode in locked if oid in self.tables_at_start})

    def _probe(self, locked: set[tuple[int, str]]) -> dict[str, dict[str, Probe | None]]:
        probes: dict[str, dict[str, Probe | None]] = {}
        for oid in self.probe_tables(locked):
            name = self.tables_at_start[oid]
            insert = self.insert_probes.get(oid)
            probes[name] = {
                "select": self._blocked(f'SELECT 1 FROM "{name}" LIMIT 1', ()),
                "insert": self._blocked(*insert) if insert else None,
            }
        return probes

    def _blocked(self, sql: str, params: tuple[Any, ...]) -> Probe:
        import psycopg

        cursor = self.b.cursor()
        timed_out, started = False, time.perf_counter()
        try:
            cursor.execute("SET LOCAL lock_timeout = '300ms'")
            cursor.execute(sql, params) if params else cursor.execute(sql)
        except psycopg.errors.LockNotAvailable:
            timed_out = True
        except psycopg.Error:
            pass  # granted its locks, then refused the row (a unique key): not blocked
        finally:
            self.b.rollback()
        return timed_out, started, time.perf_counter()


def statement_table(sql: str) -> str | None:
    """The table an ALTER TABLE, CREATE INDEX or DROP INDEX statement acts on (MariaDB quoting)."""
    match = re.match(r"\s*ALTER TABLE `([^`]+)`", sql) or re.match(
        r"\s*(?:CREATE (?:UNIQUE )?INDEX|DROP INDEX) `[^`]+` ON `([^`]+)`", sql
    )
    return match.group(1) if match else None


def _with_clause(sql: str, algorithm: str, lock: str) -> str:
    """The statement with ALGORITHM and LOCK clauses. ``DROP INDEX i ON t`` takes them in
    its ALTER TABLE form (MariaDB maps DROP INDEX to ALTER TABLE ... DROP INDEX; its own
    grammar refuses ALGORITHM=INSTANT)."""
    body = sql.rstrip().rstrip(";")
    drop = re.match(r"\s*DROP INDEX (`[^`]+`) ON (`[^`]+`)\s*$", body)
    if drop:
        body = f"ALTER TABLE {drop.group(2)} DROP INDEX {drop.group(1)}"
    if body.lstrip().upper().startswith("ALTER TABLE"):
        return f"{body}, ALGORITHM={algorithm}, LOCK={lock}"
    return f"{body} ALGORITHM={algorithm} LOCK={lock}"


class MariadbObserver:
    """Session A runs the runbook's statements; B holds metadata locks and probes for blocking."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.a = database.connect()
        self.b = database.connect()

    def close(self) -> None:
        for connection in (self.a, self.b):
            connection.close()

    @staticmethod
    def _one(connection: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = connection.cursor()
        cursor.execute(sql, params) if params else cursor.execute(sql)
        rows = list(cursor.fetchall()) if cursor.description else []
        cursor.close()
        return rows

    def begin_block(self) -> None:
        """Nothing to prepare: MariaDB runs each statement on its own."""

    def execute(self, sql: str) -> None:
        self._one(self.a, sql)

    def _table_ids(self) -> dict[str, int]:
        rows = self._one(
            self.b,
            "SELECT NAME, TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE %s",
            (self.database.name + "/%",),
        )
        return {name.split("/", 1)[1]: table_id for name, table_id in rows}

    def _create(self, table: str) -> str:
        return str(self._one(self.b, f"SHOW CREATE TABLE `{table}`")[0][1])

    def observe(self, sql: str) -> Observation:
        observation = Observation(sql=sql)
        table = statement_table(sql)
        before = self._table_ids()
        insert = self._insert_probe(table) if table else None
        if table:
            self._probe_algorithms(observation, sql, table)
        if observation.error is None and observation.probe_note != "executed by an accepted probe":
            runner = _Runner(lambda: self._one(self.a, sql))
            runner.start()
            runner.join(PROBE_AFTER["mysql"])
            probes: dict[str, Probe | None] | None = None
            if runner.is_alive() and table:
                probes = {
                    "select": self._blocked(f"SELECT 1 FROM `{table}` LIMIT 1", ()),
                    "insert": self._blocked(*insert) if insert else None,
                }
            runner.join()
            observation.seconds = runner.seconds
            if probes is not None and table:
                observation.blocks_when = "during"
                observation.blocks = _settle({table: probes}, runner.started + runner.seconds)
            if runner.error is not None:
                observation.error = f"{type(runner.error).__name__}: {runner.error}"
                return observation
        after = self._table_ids()
        observation.rewrites = {name for name, table_id in before.items() if name in after and after[name] != table_id}
        return observation

    def _probe_algorithms(self, observation: Observation, sql: str, table: str) -> None:
        definition = self._create(table)
        self._one(self.b, "START TRANSACTION")
        self._one(self.b, f"UPDATE `{table}` SET `id` = `id` WHERE 1 = 0")
        self._one(self.a, "SET SESSION lock_wait_timeout = 0")
        try:
            for algorithm in MARIADB_ALGORITHMS:
                for lock in MARIADB_LOCKS:
                    try:
                        self._one(self.a, _with_clause(sql, algorithm, lock))
                    except self.database.error as exc:
                        code = exc.args[0] if exc.args else None
                        if code in _REFUSED:
                            continue
                        if code == _LOCK_WAIT_TIMEOUT:
                            observation.algorithm, observation.lock = algorithm, lock
                            return
                        observation.error = f"probe ALGORITHM={algorithm}, LOCK={lock}: {exc}"
                        return
                    observation.algorithm, observation.lock = algorithm, lock
                    observation.probe_note = "executed by an accepted probe"
                    return
        finally:
            self._one(self.b, "ROLLBACK")
            self._one(self.a, "SET SESSION lock_wait_timeout = DEFAULT")
            if observation.probe_note is None and self._create(table) != definition:
                observation.probe_note = "SHOW CREATE TABLE changed during the probes"

    def _insert_probe(self, table: str) -> tuple[str, tuple[Any, ...]] | None:
        columns = [
            row[0]
            for row in self._one(
                self.b,
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
                " AND TABLE_NAME = %s AND EXTRA NOT LIKE %s AND EXTRA NOT LIKE %s ORDER BY ORDINAL_POSITION",
                (table, "%auto_increment%", "%GENERATED%"),
            )
        ]
        if not columns:
            return None
        quoted = ", ".join(f"`{column}`" for column in columns)
        sample = self._one(self.b, f"SELECT {quoted} FROM `{table}` LIMIT 1")
        if not sample:
            return None
        placeholders = ", ".join(["%s"] * len(columns))
        values = tuple(_perturb(value) for value in sample[0])
        return f"INSERT INTO `{table}` ({quoted}) VALUES ({placeholders})", values

    def _blocked(self, sql: str, params: tuple[Any, ...]) -> Probe:
        self._one(self.b, "SET SESSION lock_wait_timeout = 1, innodb_lock_wait_timeout = 1")
        timed_out, started = False, time.perf_counter()
        try:
            self._one(self.b, "START TRANSACTION")
            self._one(self.b, sql, params)
        except self.database.error as exc:
            timed_out = bool(exc.args and exc.args[0] == _LOCK_WAIT_TIMEOUT)
        finally:
            ended = time.perf_counter()
            self._one(self.b, "ROLLBACK")
            self._one(self.b, "SET SESSION lock_wait_timeout = DEFAULT, innodb_lock_wait_timeout = DEFAULT")
        return timed_out, started, ended
