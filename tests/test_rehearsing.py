"""The rehearsal's background thread (rehearsing.Deferred): statements run in order, reads
wait for them, a failure names the migration it belongs to, and only Django's own
operations are run in the background. Real databases of the vendor under test."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import IntegrityError, NotSupportedError, models
from django.db.migrations.operations import AddField, AddIndex, RunPython, RunSQL, SeparateDatabaseAndState

from byhand.compiling import _is_djangos
from byhand.exceptions import RehearsalError
from byhand.rehearsing import (
    SWITCH_INTERVAL,
    Deferred,
    DeferredFailure,
    StatementRecorder,
    check_on_scratch,
    use_database,
)
from byhand.vendors import ScratchDatabase, get_vendor
from support import VENDOR, fresh_database, require_server

#: A statement that takes a moment on every vendor, and returns a row nobody reads.
SLOW = {
    "postgresql": "SELECT pg_sleep(0.5)",
    "mysql": "SELECT SLEEP(0.5)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2000000) SELECT count(*) FROM c",
}[VENDOR]


@contextmanager
def rehearsal(settings: dict[str, Any]) -> Iterator[tuple[Any, StatementRecorder, Deferred]]:
    """The database behind the alias, with a recorder and its Deferred installed (and the
    vendor's twin, as compiling._in_thread installs them)."""
    with use_database("default", settings) as connection:
        connection.ensure_connection()
        vendor = get_vendor(connection.vendor)
        recorder = StatementRecorder(connection, vendor)
        recorder.label = "app.0001_first"
        deferred = recorder.deferred = Deferred(connection)
        with (
            vendor.twin(connection) as twin,
            deferred.installed(lambda: recorder.label, twin=twin),
            connection.execute_wrapper(recorder),
        ):
            yield connection, recorder, deferred


@contextmanager
def database() -> Iterator[dict[str, Any]]:
    require_server()
    with fresh_database("default") as settings:
        yield settings


@contextmanager
def editing(connection: Any, recorder: StatementRecorder, recorded: list[str]) -> Iterator[Callable[..., None]]:
    """Statements as a schema editor's execute() runs them for one of Django's operations
    (recorded into ``recorded``), without the editor's own way in and out: SQLite's
    reads its foreign-key state there, which waits for the thread."""

    def run(*sql: str) -> None:
        for statement in sql:
            recorder.in_editor += 1
            try:
                with connection.cursor() as cursor:
                    cursor.execute(statement)
            finally:
                recorder.in_editor -= 1

    recorder.sink, recorder.deferrable = recorded, True
    try:
        yield run
    finally:
        recorder.sink, recorder.deferrable = None, False


def editor_statements(connection: Any, recorder: StatementRecorder, *sql: str) -> None:
    with editing(connection, recorder, []) as run:
        run(*sql)


def table_names(connection: Any) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


class ThreadSpy:
    """Wraps a driver cursor and notes which thread executes on it."""

    def __init__(self, cursor: Any, seen: list[str]) -> None:
        self.cursor, self.seen = cursor, seen

    def execute(self, *args: Any) -> Any:
        self.seen.append(threading.current_thread().name)
        return self.cursor.execute(*args)

    def close(self) -> None:
        self.cursor.close()


def test_statements_run_in_a_thread_in_order_and_a_read_waits_for_them() -> None:
    seen: list[str] = []
    with database() as settings, rehearsal(settings) as (connection, recorder, deferred):
        handed = deferred.statement

        def spy(label: str, cursor: Any, sql: str, params: Any) -> None:
            cursor.cursor = ThreadSpy(cursor.cursor, seen)
            handed(label, cursor, sql, params)

        deferred.statement = spy  # type: ignore[method-assign]
        create = ["CREATE TABLE rehearse_a (id integer)", "CREATE TABLE rehearse_b (id integer)"]
        recorded: list[str] = []
        with editing(connection, recorder, recorded) as run:
            run(SLOW, *create)
            assert deferred.jobs.unfinished_tasks >= 1  # the caller went on while the slow statement runs
            assert {"rehearse_a", "rehearse_b"} <= table_names(connection)  # the read waited for all three
            assert deferred.jobs.unfinished_tasks == 0
    assert recorded == [SLOW, *create]
    assert seen == ["byhand-rehearsal"] * 3


def test_a_cursor_that_executes_twice_gets_a_driver_cursor_for_each() -> None:
    with database() as settings, rehearsal(settings) as (connection, recorder, _deferred):
        recorder.in_editor, recorder.deferrable = 1, True
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE rehearse_a (id integer)")
            cursor.execute("CREATE TABLE rehearse_b (id integer)")
        recorder.in_editor, recorder.deferrable = 0, False
        assert {"rehearse_a", "rehearse_b"} <= table_names(connection)


def test_a_failure_names_its_migration_and_what_was_queued_after_it_does_not_run() -> None:
    with database() as settings:
        with pytest.raises(DeferredFailure) as caught:
            with rehearsal(settings) as (connection, recorder, _deferred):
                editor_statements(connection, recorder, "CREATE TABLE rehearse_a (id integer)")
                recorder.label = "app.0002_second"
                editor_statements(connection, recorder, "CREATE TABLE rehearse_a (id integer)")  # exists: fails
                recorder.label = "app.0003_third"
                editor_statements(connection, recorder, "CREATE TABLE rehearse_c (id integer)")
                table_names(connection)  # a read: raises the failure
        with use_database("default", settings) as connection:
            tables = table_names(connection)
    assert caught.value.label == "app.0002_second"
    assert "rehearse_a" in str(caught.value.error)
    assert "rehearse_a" in tables and "rehearse_c" not in tables


def test_what_is_still_queued_when_the_caller_fails_is_dropped() -> None:
    with database() as settings:
        with pytest.raises(RuntimeError, match="the caller failed"):
            with rehearsal(settings) as (connection, recorder, _deferred):
                with editing(connection, recorder, []) as run:
                    run(SLOW, "CREATE TABLE rehearse_late (id integer)")
                    raise RuntimeError("the caller failed")
        with use_database("default", settings) as connection:
            assert "rehearse_late" not in table_names(connection)


class FakeAddIndex(AddIndex):
    """A custom operation, like django-celery-results' FakeAddIndex / TryRemoveIndex."""


def test_only_djangos_own_operations_run_in_the_background() -> None:
    index = models.Index(fields=["name"], name="rehearse_idx")
    field = models.IntegerField(null=True)
    assert _is_djangos(AddField("book", "pages", field))
    assert _is_djangos(AddIndex("book", index))
    assert _is_djangos(RunSQL("SELECT 1"))
    assert _is_djangos(AddIndexConcurrently("book", index))
    assert _is_djangos(SeparateDatabaseAndState(database_operations=[RunSQL("SELECT 1")]))
    assert not _is_djangos(FakeAddIndex("book", index))
    assert not _is_djangos(SeparateDatabaseAndState(database_operations=[FakeAddIndex("book", index)]))
    assert not _is_djangos(RunPython(RunPython.noop))


#: Values byhand and Django quote into statements (names, defaults), with quoting's hard cases.
COMPOSED = [
    "it's",
    "back\\slash",
    "100%",
    "\u00fcn\u00efc\u00f6d\u00e9 \u2603",
    datetime(2026, 11, 26, 4, 5, 6, 789, tzinfo=timezone.utc),
    date(2026, 11, 26),
    Decimal("1.50"),
    None,
    True,
    3.5,
    42,
]


def test_quoting_does_not_wait_for_the_thread_and_gives_the_connections_own_text() -> None:
    """byhand quotes its bookkeeping literals and Django its DDL defaults client-side,
    on PostgreSQL and MySQL by reading the driver connection: while the thread holds it,
    they quote on the twin connection, to the same text."""
    vendor = get_vendor(VENDOR)

    def quoted(connection: Any) -> list[str]:
        return [vendor.quote_literal(connection, value) for value in COMPOSED]

    with database() as settings, use_database("default", settings) as connection:
        expected = quoted(connection)
    with database() as settings, rehearsal(settings) as (connection, _recorder, deferred):
        busy, release = threading.Event(), threading.Event()

        def hold_the_driver() -> None:
            busy.set()
            release.wait(2)

        deferred.jobs.put(("app.0001_first", hold_the_driver))
        assert busy.wait(5)
        try:
            composed = quoted(connection)
            waited = deferred.jobs.unfinished_tasks == 0
        finally:
            release.set()
    assert composed == expected
    assert not waited, "quoting waited for the thread's statement to end"


def test_foreign_key_switches_and_check_run_in_the_thread_and_fail_at_the_next_read() -> None:
    """SQLite's schema editor turns foreign keys off on the way in and checks them on the way
    out of every migration: as jobs, they need not wait for the statements before them.
    PostgreSQL cannot turn them off (Django's editor never asks it to); the job says so."""
    with database() as settings:
        with pytest.raises(DeferredFailure) as caught:
            with rehearsal(settings) as (connection, recorder, deferred):
                editor_statements(
                    connection,
                    recorder,
                    "CREATE TABLE rehearse_parent (id integer PRIMARY KEY)",
                    "CREATE TABLE rehearse_child (id integer PRIMARY KEY, parent_id integer "
                    "REFERENCES rehearse_parent (id))",
                )
                table_names(connection)
                assert connection.disable_constraint_checking() is True
                editor_statements(connection, recorder, SLOW)
                if VENDOR != "postgresql":
                    editor_statements(connection, recorder, "INSERT INTO rehearse_child VALUES (1, 42)")
                    connection.check_constraints(table_names=["rehearse_child"])
                connection.enable_constraint_checking()
                assert deferred.jobs.unfinished_tasks >= 1  # nothing above waited for the slow statement
                recorder.label = "app.0002_second"
                table_names(connection)  # a read: raises the failure
    assert caught.value.label == "app.0001_first"
    expected = NotSupportedError if VENDOR == "postgresql" else IntegrityError
    assert isinstance(caught.value.error, expected), caught.value.error


def test_the_thread_gets_the_gil_back_sooner_while_installed() -> None:
    before = sys.getswitchinterval()
    with database() as settings, rehearsal(settings):
        during = sys.getswitchinterval()
    assert during == pytest.approx(min(before, SWITCH_INTERVAL)) and during < 0.0005
    assert sys.getswitchinterval() == before


def test_a_connection_that_is_not_on_the_scratch_database_is_refused() -> None:
    """check_on_scratch asks the server which database the connection is on, and refuses
    any but the scratch database it was opened for."""
    vendor = get_vendor(VENDOR)
    with database() as settings, use_database("default", settings) as connection:
        check_on_scratch(connection, vendor, ScratchDatabase(settings=settings, fingerprint="", server_version=""))
        other = ScratchDatabase(
            settings={**settings, "NAME": f"{settings['NAME']}_x"}, fingerprint="", server_version=""
        )
        with pytest.raises(RehearsalError, match="byhand stopped before writing to it") as caught:
            check_on_scratch(connection, vendor, other)
    assert str(settings["NAME"]).rsplit("/", 1)[-1] in str(caught.value)
