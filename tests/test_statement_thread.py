"""The rehearsal's statement thread (planning/statement_thread.py) and the recorder that
feeds it: statements run in order, reads wait for them, a failure names the migration it
belongs to, and only Django's own operations are run in the background. Real databases
of the vendor under test."""

from __future__ import annotations

import queue
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

from byhand.exceptions import RehearsalError
from byhand.planning.recorder import StatementRecorder
from byhand.planning.rehearsing import is_djangos
from byhand.planning.scratch import check_on_scratch, use_database
from byhand.planning.statement_thread import SWITCH_INTERVAL, BackgroundFailure, StatementThread
from byhand.vendors import ScratchDatabase, get_vendor
from support import VENDOR, fresh_database

#: A statement that takes a moment on every vendor, and returns a row nobody reads.
SLOW = {
    "postgresql": "SELECT pg_sleep(0.5)",
    "mysql": "SELECT SLEEP(0.5)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2000000) SELECT count(*) FROM c",
}[VENDOR]


class Editor:
    """Stands in for a schema editor: what its execute() runs, the recorder takes for the
    editor's (a tuple of statements runs on one cursor). Without a real editor's way in
    and out: SQLite's reads its foreign-key state there, which waits for the thread."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str | tuple[str, ...], params: Any = ()) -> None:
        with self.connection.cursor() as cursor:
            for statement in (sql,) if isinstance(sql, str) else sql:
                cursor.execute(statement)


@contextmanager
def rehearsal(settings: dict[str, Any]) -> Iterator[tuple[Any, StatementRecorder, StatementThread, Editor]]:
    """The database behind the alias, with a recorder and its statement thread installed
    (and the vendor's twin), as compiling installs them."""
    with use_database("default", settings) as connection:
        connection.ensure_connection()
        recorder = StatementRecorder(connection, get_vendor(connection.vendor))
        editor = Editor(connection)
        recorder.watch(editor)
        with recorder.threaded(enabled=True), recorder.recording("app.0001_first"):
            assert recorder.thread is not None
            yield connection, recorder, recorder.thread, editor


@pytest.fixture
def settings() -> Iterator[dict[str, Any]]:
    with fresh_database("default") as settings:
        yield settings


@contextmanager
def editing(recorder: StatementRecorder, editor: Editor, recorded: list[str]) -> Iterator[Callable[..., None]]:
    """Statements as a schema editor's execute() runs them for one of Django's operations,
    recorded into ``recorded``."""
    with recorder.capturing(recorded, background=True):
        yield lambda *sql: [editor.execute(statement) for statement in sql]


def editor_statements(recorder: StatementRecorder, editor: Editor, *sql: str) -> None:
    with editing(recorder, editor, []) as run:
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


@pytest.mark.needs_server
def test_statements_run_in_a_thread_in_order_and_a_read_waits_for_them(settings: dict[str, Any]) -> None:
    """The caller goes on while the thread runs a slow statement; a read waits for all."""
    seen: list[str] = []
    with rehearsal(settings) as (connection, recorder, thread, editor):
        handed = thread.statement

        def spy(label: str, cursor: Any, sql: str, params: Any, observe: Any = None) -> None:
            cursor.cursor = ThreadSpy(cursor.cursor, seen)
            handed(label, cursor, sql, params, observe)

        thread.statement = spy  # type: ignore[method-assign]
        create = ["CREATE TABLE rehearse_a (id integer)", "CREATE TABLE rehearse_b (id integer)"]
        recorded: list[str] = []
        with editing(recorder, editor, recorded) as run:
            run(SLOW, *create)
            assert thread.pending() >= 1  # the caller went on while the slow statement runs
            assert {"rehearse_a", "rehearse_b"} <= table_names(connection)  # the read waited for all three
            assert thread.pending() == 0
    assert recorded == [SLOW, *create]
    assert seen == ["byhand-rehearsal"] * 3


@pytest.mark.needs_server
def test_the_caller_hands_over_and_waits_without_a_lock_taken_in_python_code(settings: dict[str, Any]) -> None:
    """SIGTERM and Ctrl-C raise KeyboardInterrupt wherever the main thread is. Raised in a
    lock that Python code takes (queue.Queue's, threading.Event's) after it is taken and
    before its ``with`` has begun, it left the lock held: the thread then waited for it
    forever, and so did the caller's clean-up (``byhand sql`` hung on a SIGTERM, 1 run in
    120 here). What the caller calls to hand over statements and wait for them must not
    run Python code of threading or queue."""
    entered: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_filename in (threading.__file__, queue.__file__):
            if code.co_name == "current_thread":  # reads the thread's name: no lock
                return
            entered.append(f"{code.co_filename}:{code.co_name}")

    with rehearsal(settings) as (connection, recorder, thread, editor):
        sys.setprofile(profile)
        try:
            editor_statements(recorder, editor, "CREATE TABLE rehearse_a (id integer)", SLOW)
            connection.commit()  # a job too
            assert thread.pending() >= 1
            assert "rehearse_a" in table_names(connection)  # waits for the thread
        finally:
            sys.setprofile(None)
    assert entered == []


@pytest.mark.needs_server
def test_a_cursor_that_executes_twice_gets_a_driver_cursor_for_each(settings: dict[str, Any]) -> None:
    """The thread closes each driver cursor it is handed: a cursor used again gets a new one."""
    with rehearsal(settings) as (connection, recorder, _thread, editor):
        with recorder.capturing([], background=True):
            editor.execute(("CREATE TABLE rehearse_a (id integer)", "CREATE TABLE rehearse_b (id integer)"))
        assert {"rehearse_a", "rehearse_b"} <= table_names(connection)


@pytest.mark.needs_server
def test_a_failure_names_its_migration_and_what_was_queued_after_it_does_not_run(settings: dict[str, Any]) -> None:
    """The first failure stops the thread's work and is raised, with its migration, at the next read."""
    with pytest.raises(BackgroundFailure) as caught:
        with rehearsal(settings) as (connection, recorder, _thread, editor):
            editor_statements(recorder, editor, "CREATE TABLE rehearse_a (id integer)")
            with recorder.recording("app.0002_second"):
                editor_statements(recorder, editor, "CREATE TABLE rehearse_a (id integer)")  # exists: fails
            with recorder.recording("app.0003_third"):
                editor_statements(recorder, editor, "CREATE TABLE rehearse_c (id integer)")
            table_names(connection)  # a read: raises the failure
    with use_database("default", settings) as connection:
        tables = table_names(connection)
    assert caught.value.label == "app.0002_second"
    assert "rehearse_a" in str(caught.value.error)
    assert "rehearse_a" in tables and "rehearse_c" not in tables


@pytest.mark.needs_server
def test_what_is_still_queued_when_the_caller_fails_is_dropped(settings: dict[str, Any]) -> None:
    """The caller failed: what it queued behind a slow statement never runs."""
    with pytest.raises(RuntimeError, match="the caller failed"):
        with rehearsal(settings) as (_connection, recorder, _thread, editor):
            with editing(recorder, editor, []) as run:
                run(SLOW, "CREATE TABLE rehearse_late (id integer)")
                raise RuntimeError("the caller failed")
    with use_database("default", settings) as connection:
        assert "rehearse_late" not in table_names(connection)


class FakeAddIndex(AddIndex):
    """A custom operation, like django-celery-results' FakeAddIndex / TryRemoveIndex."""


def test_only_djangos_own_operations_run_in_the_background() -> None:
    """Custom operations (which may catch their own statement's failure) and Python run in the caller."""
    index = models.Index(fields=["name"], name="rehearse_idx")
    field = models.IntegerField(null=True)
    assert is_djangos(AddField("book", "pages", field))
    assert is_djangos(AddIndex("book", index))
    assert is_djangos(RunSQL("SELECT 1"))
    assert is_djangos(AddIndexConcurrently("book", index))
    assert is_djangos(SeparateDatabaseAndState(database_operations=[RunSQL("SELECT 1")]))
    assert not is_djangos(FakeAddIndex("book", index))
    assert not is_djangos(SeparateDatabaseAndState(database_operations=[FakeAddIndex("book", index)]))
    assert not is_djangos(RunPython(RunPython.noop))


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


@pytest.mark.needs_server
def test_quoting_does_not_wait_for_the_thread_and_gives_the_connections_own_text() -> None:
    """byhand quotes its bookkeeping literals and Django its DDL defaults client-side,
    on PostgreSQL and MySQL by reading the driver connection: while the thread holds it,
    they quote on the twin connection, to the same text."""
    vendor = get_vendor(VENDOR)

    def quoted(connection: Any) -> list[str]:
        return [vendor.quote_literal(connection, value) for value in COMPOSED]

    with fresh_database("default") as settings, use_database("default", settings) as connection:
        expected = quoted(connection)
    with fresh_database("default") as settings, rehearsal(settings) as (connection, _recorder, thread, _editor):
        busy, release = threading.Event(), threading.Event()

        def hold_the_driver() -> None:
            busy.set()
            release.wait(2)

        thread.job("app.0001_first", hold_the_driver)
        assert busy.wait(5)
        try:
            composed = quoted(connection)
            waited = thread.pending() == 0
        finally:
            release.set()
    assert composed == expected
    assert not waited, "quoting waited for the thread's statement to end"


@pytest.mark.needs_server
def test_foreign_key_switches_and_check_run_in_the_thread_and_fail_at_the_next_read(settings: dict[str, Any]) -> None:
    """SQLite's schema editor turns foreign keys off on the way in and checks them on the way
    out of every migration: as jobs, they need not wait for the statements before them.
    PostgreSQL cannot turn them off (Django's editor never asks it to); the job says so."""
    with pytest.raises(BackgroundFailure) as caught:
        with rehearsal(settings) as (connection, recorder, thread, editor):
            editor_statements(
                recorder,
                editor,
                "CREATE TABLE rehearse_parent (id integer PRIMARY KEY)",
                "CREATE TABLE rehearse_child (id integer PRIMARY KEY, parent_id integer "
                "REFERENCES rehearse_parent (id))",
            )
            table_names(connection)
            assert connection.disable_constraint_checking() is True
            editor_statements(recorder, editor, SLOW)
            if VENDOR != "postgresql":
                editor_statements(recorder, editor, "INSERT INTO rehearse_child VALUES (1, 42)")
                connection.check_constraints(table_names=["rehearse_child"])
            connection.enable_constraint_checking()
            assert thread.pending() >= 1  # nothing above waited for the slow statement
            with recorder.recording("app.0002_second"):
                table_names(connection)  # a read: raises the failure
    assert caught.value.label == "app.0001_first"
    expected = NotSupportedError if VENDOR == "postgresql" else IntegrityError
    assert isinstance(caught.value.error, expected), caught.value.error


@pytest.mark.needs_server
def test_the_thread_gets_the_gil_back_sooner_while_installed(settings: dict[str, Any]) -> None:
    """A shorter switch interval while the thread runs, the old one back afterwards."""
    before = sys.getswitchinterval()
    with rehearsal(settings):
        during = sys.getswitchinterval()
    assert during == pytest.approx(min(before, SWITCH_INTERVAL)) and during < 0.0005
    assert sys.getswitchinterval() == before


@pytest.mark.needs_server
def test_a_connection_that_is_not_on_the_scratch_database_is_refused(settings: dict[str, Any]) -> None:
    """check_on_scratch asks the server which database the connection is on, and refuses
    any but the scratch database it was opened for."""
    vendor = get_vendor(VENDOR)
    with use_database("default", settings) as connection:
        check_on_scratch(connection, vendor, ScratchDatabase(settings=settings, fingerprint="", server_version=""))
        other = ScratchDatabase(
            settings={**settings, "NAME": f"{settings['NAME']}_x"}, fingerprint="", server_version=""
        )
        with pytest.raises(RehearsalError, match="byhand stopped before writing to it") as caught:
            check_on_scratch(connection, vendor, other)
    assert str(settings["NAME"]).rsplit("/", 1)[-1] in str(caught.value)
