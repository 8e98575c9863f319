"""SQLite: transactional DDL, foreign keys switched off around each migration, file copies."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from byhand.exceptions import RehearsalError
from byhand.vendors.base import SCRATCH_PREFIX, ScratchDatabase, Vendor, fingerprint, own_connection, scratch_name
from byhand.vendors.observing import Observer, SQLiteObserver
from byhand.vendors.params import ConnectionParams
from byhand.vendors.statements import digest, tables_named_in
from byhand.vendors.target import Blocker, Target, milliseconds

__all__ = ["SQLite", "SQLiteTarget"]

_FOREIGN_KEY_CHECK = "PRAGMA foreign_key_check;"

# Django's SQLite cursor turns unescaped %s into ? and %% into % (convert_query).
_PLACEHOLDER = re.compile(r"%%|(?<!%)%s")


#: Shadow tables of FTS3/4, FTS5 and R*Tree, for SQLite older than 3.37 (no PRAGMA table_list).
_SHADOW_SUFFIXES = (
    "content",
    "segments",
    "segdir",
    "docsize",
    "stat",
    "data",
    "idx",
    "config",
    "node",
    "parent",
    "rowid",
)


def _shadow_tables(cursor: Any) -> set[str]:
    """Tables a virtual table (FTS5, R*Tree) made for itself: its CREATE VIRTUAL TABLE
    makes them again, so copying them too would fail with 'already exists'."""
    if sqlite3.sqlite_version_info >= (3, 37):
        cursor.execute("PRAGMA table_list")
        return {row[1] for row in cursor.fetchall() if row[2] == "shadow"}
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
    virtual = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    names = {name for (name,) in cursor.fetchall()}
    return {f"{v}_{suffix}" for v in virtual for suffix in _SHADOW_SUFFIXES} & names


def _scratch_path(prefix: str) -> str:
    """Where a scratch copy goes: a name no one uses (<prefix><pid>_<random>), in
    the temporary folder. The file is not made here but by SQLite when the copy is first
    opened, inside the code that drops it on failure: a SIGTERM between tempfile.mkstemp
    making the file and the caller knowing its name left the file behind."""
    return os.path.join(tempfile.gettempdir(), f"{scratch_name(prefix)}.sqlite3")


# -- operating side: the connection a runbook is applied through -----------------------


class SQLiteTarget(Target):
    def driver_connect(self, *, application: str) -> Any:
        path = self.params.database
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no SQLite database at {path!r}")
        # Autocommit: byhand sends BEGIN IMMEDIATE / COMMIT itself.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
        _register_django_functions(connection)
        return connection

    def session_id(self) -> int:
        return os.getpid()

    def server_version(self) -> str:
        return sqlite3.sqlite_version

    def begin(self) -> None:
        # Take the write lock now, so that waiting for it happens here, bounded by busy_timeout.
        self.execute("BEGIN IMMEDIATE")

    def set_timeouts(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None, local: bool) -> None:
        self.execute(f"PRAGMA busy_timeout = {milliseconds(lock_timeout)}")

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and (
            "database is locked" in str(exc) or "database table is locked" in str(exc)
        )

    def is_connection_lost(self, exc: BaseException) -> bool:
        return False

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def find_blockers(
        self, *, waiting_session: int, tables: list[str], older_than: timedelta, snapshots: bool = False
    ) -> list[Blocker]:
        # SQLite does not say who holds its lock; the processes that have the file open might.
        return [
            Blocker(
                pid=pid,
                user=None,
                application=command,
                client=None,
                state=None,
                transaction_age=None,
                query_start=None,
                query=None,
                certain=False,
            )
            for pid, command in _processes_with_open(self.params.database)
        ]

    def cancel(self, blocker: Blocker) -> None:
        raise NotImplementedError("SQLite has no sessions to cancel; its blockers are never certain")

    def terminate(self, blocker: Blocker) -> None:
        raise NotImplementedError("SQLite has no sessions to terminate; its blockers are never certain")

    def _lock_path(self, name: str) -> str:
        return f"{self.params.database}.{name}.lock"

    def try_run_lock(self, name: str) -> bool:
        import fcntl

        handle = open(self._lock_path(name), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_holder_facts()))
        handle.flush()
        self._lock_handle = handle
        return True

    def release_run_lock(self, name: str) -> None:
        handle = getattr(self, "_lock_handle", None)
        if handle is not None:
            handle.close()  # closing releases the flock
            del self._lock_handle

    def run_lock_holder(self, name: str) -> str | None:
        try:
            with open(self._lock_path(name)) as handle:
                facts = json.loads(handle.read() or "{}")
        except (OSError, ValueError):
            return None
        return f"pid {facts.get('pid')} of {facts.get('operator')}, since {facts.get('since')}"

    def table_exists(self, name: str) -> bool:
        return bool(self.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))[0][0])

    def state_of(self, sql: str) -> str:
        tables = tables_named_in(sql)
        marks = ", ".join("?" * len(tables))
        where = f"WHERE tbl_name IN ({marks})" if tables else ""
        rows = self.execute(f"SELECT type, name, sql FROM sqlite_master {where} ORDER BY name", tables)
        return digest(repr(rows))

    def timestamp(self, moment: datetime) -> Any:
        return moment.astimezone(timezone.utc).isoformat(sep=" ")


def _register_django_functions(connection: sqlite3.Connection) -> None:
    """Functional indexes may call the SQL functions Django registers on its SQLite
    connections (django_date_extract, ...): register them when Django is importable."""
    try:
        from django.db.backends.sqlite3._functions import register  # type: ignore[import-untyped]
    except ImportError:
        return
    register(connection)


def _holder_facts() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "operator": f"{getpass.getuser()}@{socket.gethostname()}",
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _processes_with_open(path: str) -> list[tuple[int, str]]:
    """(pid, command) of the other processes that have ``path`` open (Linux /proc)."""
    wanted = os.path.realpath(path)
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.path.realpath(f"/proc/{entry}/fd/{fd}") == wanted for fd in fds):
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append((int(entry), command[:80]))
        except OSError:
            continue
    return found


# -- the vendor ------------------------------------------------------------------------


class SQLite(Vendor):
    """SQLite 3.31+ (the standard library's sqlite3): transactional DDL, foreign keys
    switched off around each migration, the scratch copy a file."""

    name = "sqlite"
    title = "SQLite"
    target_class = SQLiteTarget
    placeholder = "?"
    watchable = False  # who holds the lock is read from /proc after a timeout instead
    copies_in_background = False  # a file copy is quick, and ":memory:" is per connection
    connect_check = "the file's path, and that this user may read and write it and its folder"
    column_types: ClassVar[dict[str, str]] = {"timestamp": "text"}
    identity_column = "integer NOT NULL PRIMARY KEY AUTOINCREMENT"
    read_only = ("PRAGMA query_only = ON", "PRAGMA query_only = OFF")

    def params_from_settings(self, settings: dict[str, Any]) -> ConnectionParams:
        return ConnectionParams(vendor=self.name, database=str(settings["NAME"]))

    def observer(self, connection: Any) -> Observer:
        return SQLiteObserver()

    def render_executed(self, connection: Any, sql: str, params: Any) -> str:
        if params is None:
            return sql
        values = iter(params)

        def substitute(match: re.Match[str]) -> str:
            return "%" if match.group() == "%%" else self.quote_literal(connection, next(values))

        return _PLACEHOLDER.sub(substitute, sql)

    def quote_literal(self, connection: Any, value: Any) -> str:
        # Django's own emulation of SQLite's parameter binding (it never doubles %).
        return str(connection.SchemaEditorClass(connection).quote_value(value))

    def now_sql(self, *, use_tz: bool) -> str:
        # Django stores text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC with USE_TZ).
        modifier = "" if use_tz else ", 'localtime'"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now'{modifier})"

    def server_version(self, connection: Any) -> str:
        return sqlite3.sqlite_version

    def foreign_key_actions(self, cursor: Any, table: str) -> dict[str, str]:
        # SQLite's foreign keys have no names: Django's introspection calls them fk_0,
        # fk_1, ... in the order of its get_relations(), a dict by column (the last row
        # of a column wins, at the column's first place), made from this PRAGMA.
        cursor.execute(f"PRAGMA foreign_key_list({self.quote_name(table)})")
        by_column: dict[str, str] = {}
        for row in cursor.fetchall():
            by_column[row[3]] = str(row[6])
        return {f"fk_{index}": action for index, action in enumerate(by_column.values())}

    def column_type_names(self, cursor: Any, table: str) -> dict[str, str]:
        # The type as the column was declared (SQLite keeps the text: varchar(150), bigint).
        cursor.execute(f"PRAGMA table_info({self.quote_name(table)})")
        return {str(row[1]): str(row[2]) for row in cursor.fetchall()}

    def database_name(self, connection: Any) -> str:
        # The main database's file, as SQLite opened it; settings may name it otherwise.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA database_list")
            path = next(row[2] for row in cursor.fetchall() if row[1] == "main")
        return os.path.realpath(path) if path else ""

    def expected_database_name(self, settings: dict[str, Any]) -> str:
        return os.path.realpath(str(settings["NAME"]))

    def before_migration(self, *, transaction: bool) -> list[str]:
        # As Django's schema editor: foreign keys off outside the transaction.
        return ["PRAGMA foreign_keys = OFF;", *super().before_migration(transaction=transaction)]

    def after_migration(self, *, transaction: bool) -> list[str]:
        # The sqlite3 CLI prints violations instead of failing; byhand apply fails on them.
        commit = super().after_migration(transaction=transaction)
        return [_FOREIGN_KEY_CHECK, *commit, "PRAGMA foreign_keys = ON;"]

    def control_failure(self, sql: str, rows: list[tuple[Any, ...]]) -> tuple[str, str] | None:
        if sql != _FOREIGN_KEY_CHECK or not rows:
            return None
        tables = sorted({str(row[0]) for row in rows})
        return "foreign key check", f"{len(rows)} row(s) violate foreign keys in {', '.join(tables)}"

    def preamble(self) -> list[str]:
        return ["PRAGMA legacy_alter_table = OFF;"]

    def make_scratch(
        self, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX, unwanted: threading.Event | None = None
    ) -> ScratchDatabase:
        with target.cursor() as cursor:
            shadow = _shadow_tables(cursor)
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 "
                "WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid"
            )
            statements = [sql for name, sql in cursor.fetchall() if name not in shadow]
        scratch = ScratchDatabase(
            settings={**target.settings_dict, "NAME": _scratch_path(prefix)},
            fingerprint=fingerprint("\n".join(statements)),
            server_version=self.server_version(target),
        )
        try:
            # Through a Django connection: functional indexes call the SQL functions
            # (django_datetime_extract, ...) that Django registers on its SQLite connections.
            copy = own_connection(target, scratch.settings)
            try:
                with copy.cursor() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
            finally:
                copy.close()
        except Exception as exc:
            self.drop_scratch(scratch, server=server)
            raise RehearsalError(f"could not copy the schema into the scratch file: {exc}") from exc
        except BaseException:  # Ctrl-C, SIGTERM: the caller never sees the file, so drop it here
            self.drop_scratch(scratch, server=server)
            raise
        return scratch

    def make_empty_scratch(self, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX) -> ScratchDatabase:
        settings = {**target.settings_dict, "NAME": _scratch_path(prefix)}
        return ScratchDatabase(settings=settings, fingerprint="", server_version=self.server_version(target))

    @contextmanager
    def twin(self, connection: Any) -> Iterator[Any]:
        yield None  # Django quotes with sqlite3.adapt, no connection

    def prepare_scratch(self, connection: Any) -> None:
        # The copy is thrown away: no fsync at every COMMIT, journal in memory.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA journal_mode = MEMORY")

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(scratch.settings["NAME"] + suffix)
            except FileNotFoundError:
                pass
