"""The rehearsal: a schema-only scratch copy of the target, and what Django sends to it.

While a plan is compiled, the target's alias points at the scratch copy
(``use_database``), so that every schema editor, ``atomic()`` and ORM query Django
makes through the alias lands there; ``StatementRecorder`` keeps what the schema
editor executed, statement by statement, apart from what RunPython code executed.

``Deferred`` lets the scratch copy run the schema editor's statements in a thread of
their own while Django computes the next states: the database works on one core while
Python works on the other. Anything that reads the database waits until every earlier
statement has run, so it sees exactly what it would have seen without the thread.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import NotSupportedError, connections

from byhand.exceptions import RehearsalError
from byhand.vendors import ScratchDatabase, Vendor
from byhand.vendors.base import own_connection

__all__ = ["Deferred", "DeferredFailure", "StatementRecorder", "check_on_scratch", "scratch_copy", "use_database"]


@contextmanager
def scratch_copy(vendor: Vendor, target: Any, *, server: Any) -> Iterator[Callable[[], ScratchDatabase]]:
    """A schema-only copy of ``target`` on ``server``'s server, dropped afterwards, also on failure.

    Yields a function that returns the copy, waiting for it if need be. A server
    vendor's copy (dump, CREATE DATABASE, load: other processes, mostly) is started at
    once, in a thread, with connections of its own (Django's are bound to their
    thread); SQLite's is made on the first call. A copy still under way on the way out
    (no one asked for it, or the caller failed) is stopped where it is (the vendor's dump
    or load killed) and dropped; its failure is not raised. The drop has a connection of
    its own.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="byhand-scratch") as pool:
        copies: list[Future[ScratchDatabase]] = []
        unwanted = threading.Event()  # set on the way out: a copy still under way is not needed
        if vendor.copies_in_background:
            copies.append(pool.submit(_copy_with_own_connections, vendor, target, server, unwanted))

        def scratch() -> ScratchDatabase:
            if not copies:
                copies.append(Future())
                try:
                    copies[0].set_result(vendor.make_scratch(target, server=server))
                except BaseException as exc:  # noqa: BLE001 -- raised again by result() below
                    copies[0].set_exception(exc)
            return copies[0].result()

        try:
            yield scratch
        finally:
            unwanted.set()  # no one asked for it, or the caller failed: stop the dump or load under way
            for copy in copies:
                if copy.exception() is None:
                    _drop_with_own_connection(vendor, copy.result(), server)


def _drop_with_own_connection(vendor: Vendor, scratch: ScratchDatabase, server: Any) -> None:
    """Not on the caller's connection: an interruption may have left it mid-query or in a
    failed transaction ("commands out of sync", "current transaction is aborted")."""
    own_server = own_connection(server)
    try:
        vendor.drop_scratch(scratch, server=own_server)
    finally:
        own_server.close()


def _copy_with_own_connections(vendor: Vendor, target: Any, server: Any, unwanted: threading.Event) -> ScratchDatabase:
    own_target = own_connection(target)
    own_server = own_connection(server)
    try:
        return vendor.make_scratch(own_target, server=own_server, unwanted=unwanted)
    finally:
        own_target.close()
        own_server.close()


def check_on_scratch(connection: Any, vendor: Vendor, scratch: ScratchDatabase) -> None:
    """Refuse to go on unless ``connection`` is on the scratch database, as its server
    says: the last guard before byhand writes anything through it. A connection pool,
    a service file or an option that overrides the database name could send it elsewhere."""
    expected = vendor.expected_database_name(scratch.settings)
    actual = vendor.database_name(connection)
    if actual != expected:
        raise RehearsalError(
            f"the connection opened for the scratch database {expected!r} is on {actual!r}; "
            "byhand stopped before writing to it. Check the alias's OPTIONS for anything that "
            "chooses the database other than NAME."
        )


@contextmanager
def use_database(alias: str, database_settings: dict[str, Any]) -> Iterator[Any]:
    """Point the alias at another database (the scratch copy) for a while, so that
    everything Django does through the alias (schema editor, atomic(), RunPython's
    ORM, routers) lands there, and nothing reaches the target."""
    original = connections[alias]
    scratch = own_connection(original, database_settings)
    connections[alias] = scratch
    try:
        yield scratch
    finally:
        scratch.close()
        connections[alias] = original


class DeferredFailure(BaseException):
    """A statement run in the background failed: raised at the next point that waits for
    the background, naming the migration the statement belongs to. A BaseException, so
    that no operation's ``except Exception`` can mistake it for a failure of its own."""

    def __init__(self, label: str, error: BaseException) -> None:
        super().__init__(label, error)
        self.label = label
        self.error = error


class Deferred:
    """Runs a Django connection's statements and transaction control in order, in a
    thread, on the same driver connection; ``drain()`` waits until all have run.

    Only what returns nothing to its caller goes to the thread: the schema editor's
    statements of Django's own operations, BEGIN, savepoints, commit, rollback and
    autocommit switches. While it is installed, the connection waits for the thread
    before anything else touches the driver (``StatementRecorder`` drains before any
    other statement). The first failure stops the thread's work; every later
    ``drain()`` raises it as DeferredFailure. When the caller fails, what is still
    queued is dropped.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.jobs: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self.failure: DeferredFailure | None = None
        self.abandoned = False
        #: Held while the thread uses the driver connection, and by the caller around
        #: what reads driver state without going through the thread (client-side quoting).
        self.driver_lock = threading.RLock()
        self.thread = threading.Thread(target=self._work, name="byhand-rehearsal", daemon=True)

    def statement(self, label: str, cursor: Any, sql: str, params: Any) -> None:
        """Run ``sql`` in the thread on ``cursor`` (a Django CursorWrapper), as its execute()
        would have; the cursor's driver cursor is the thread's from now on (it closes it)."""
        connection = self.connection
        connection.validate_no_broken_transaction()
        driver_cursor = cursor.cursor
        if isinstance(driver_cursor, _Handed):  # a cursor used again: a driver cursor of its own
            driver_cursor = connection.create_cursor()
        cursor.cursor = _Handed()

        def run() -> None:
            try:
                with connection.wrap_database_errors:
                    if params is None:
                        driver_cursor.execute(sql)
                    else:
                        driver_cursor.execute(sql, params)
            finally:
                driver_cursor.close()

        self.jobs.put((label, run))

    def drain(self) -> None:
        """Wait until every statement handed over so far has run; raise the first failure."""
        self.jobs.join()
        if self.failure is not None:
            raise self.failure

    def in_thread(self) -> bool:
        """Whether the caller is the thread itself (running a job)."""
        return threading.current_thread() is self.thread

    @contextmanager
    def installed(self, label: Callable[[], str], *, twin: Any = None) -> Iterator[Deferred]:
        """Route the connection's commit, rollback and autocommit switches, and SQLite's
        foreign-key switches and check around every schema editor, through the thread
        (``label()`` names the migration they belong to); on the way out, wait for the
        thread (raising its failure unless something else is already raised) and stop it.

        Client-side quoting reads the driver connection (PostgreSQL's compose_sql,
        mysqlclient's escape and literal), which the thread may be using. The thread
        quotes on it under its lock; the caller quotes on ``twin`` (Vendor.twin: a
        second connection set up as this one, so the same text) when there is one,
        instead of waiting for the thread to finish its statement.
        """
        connection = self.connection
        originals = {name: getattr(connection, name) for name in ("_commit", "_rollback", "_set_autocommit")}

        def deferring(name: str) -> Callable[..., None]:
            original = originals[name]

            def call(*args: Any) -> None:
                self.jobs.put((label(), lambda: original(*args)))

            return call

        for name in originals:
            setattr(connection, name, deferring(name))
        for name, call in self._constraint_switches(connection, label).items():
            setattr(connection, name, call)
        quoting = [
            (owner, name, getattr(getattr(connection, owner), name))
            for owner, names in (("ops", ("compose_sql",)), ("connection", _QUOTING))
            for name in names
            if hasattr(getattr(connection, owner), name)
        ]
        for owner, name, original in quoting:
            setattr(getattr(connection, owner), name, self._quoting(original, owner, name, twin))
        # The thread needs the GIL back after each statement, while this thread computes
        # states and holds it: by default it waits up to 5 ms for that, every time.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL))
        self.thread.start()
        try:
            yield self
            self.drain()
        except BaseException:
            self.abandoned = True  # nothing left in the queue is wanted any more
            raise
        finally:
            self.jobs.put(None)  # after whatever is queued: the thread runs (or skips) it all first
            self.thread.join()
            sys.setswitchinterval(switch_interval)
            for name in (*originals, *_CONSTRAINT_SWITCHES):
                delattr(connection, name)  # the class's methods again
            for owner, name, original in quoting:
                setattr(getattr(connection, owner), name, original)  # mysqlclient's connection refuses delattr

    def _constraint_switches(self, connection: Any, label: Callable[[], str]) -> dict[str, Callable[..., Any]]:
        """disable_constraint_checking, check_constraints and enable_constraint_checking
        as jobs. SQLite's schema editor calls them on the way in and out of every
        migration, and reading the pragma back would otherwise wait for the thread each
        time. A failure (the switch did not take, a row breaks a foreign key) is raised
        by the next drain(), as any statement's."""
        disable = connection.disable_constraint_checking
        check = connection.check_constraints
        enable = connection.enable_constraint_checking

        def job(run: Callable[[], Any]) -> None:
            def shared() -> None:
                # They open Django cursors, which check the thread that made the connection.
                connection.inc_thread_sharing()
                try:
                    run()
                finally:
                    connection.dec_thread_sharing()

            self.jobs.put((label(), shared))

        def disabled() -> None:
            if not disable():
                raise NotSupportedError(
                    "foreign key checks could not be turned off on the scratch copy "
                    "(a transaction was open when a schema editor started)."
                )

        def disable_constraint_checking() -> bool:
            job(disabled)
            return True  # the job raises if it was not so

        def check_constraints(table_names: Any = None) -> None:
            job(lambda: check(table_names))

        def enable_constraint_checking() -> None:
            job(enable)

        return dict(
            zip(
                _CONSTRAINT_SWITCHES,
                (disable_constraint_checking, check_constraints, enable_constraint_checking),
                strict=True,
            )
        )

    def _quoting(self, original: Callable[..., Any], owner: str, name: str, twin: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if twin is None or self.in_thread():
                with self.driver_lock:
                    return original(*args, **kwargs)
            if owner == "connection":
                twin.ensure_connection()
            return getattr(getattr(twin, owner), name)(*args, **kwargs)

        return call

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                label, run = job
                if self.failure is None and not self.abandoned:
                    with self.driver_lock:
                        try:
                            run()
                        except BaseException as exc:  # noqa: BLE001 -- handed to the caller by drain()
                            self.failure = DeferredFailure(label, exc)
            finally:
                self.jobs.task_done()


#: Seconds a thread may hold the GIL while another waits for it, during a rehearsal
#: (Python's default is 5 ms). SQLite's driver takes the GIL back several times per
#: statement (prepare, step), so on SQLite the thread spent most of its time waiting for
#: it; benchmarks/RESULTS.md has what 0.5 ms, then 0.1 ms, gained.
SWITCH_INTERVAL = 0.0001

#: Connection methods Deferred.installed turns into jobs (see _constraint_switches).
_CONSTRAINT_SWITCHES = ("disable_constraint_checking", "check_constraints", "enable_constraint_checking")

#: mysqlclient's quoting methods, which take its connection (it refuses concurrent use).
_QUOTING = ("escape", "literal", "string_literal", "escape_string")


class _Handed:
    """Stands in for a driver cursor handed to the background thread: the caller's
    cursor wrapper may still close it, which is then the thread's business."""

    def close(self) -> None:
        pass


#: Statements that return nothing and only steer the transaction: they may run in the background.
_CONTROL = ("BEGIN", "SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class StatementRecorder:
    """Captures what the schema editor sends to the database, statement by statement.

    A statement is kept once it has succeeded: an operation may catch the failure of
    its own statement (django-celery-results' TryRemoveIndex drops an index that may
    not exist), and then migrate changed nothing, so the runbook must not hold it.
    That is why only Django's own operations (``deferrable``), which catch nothing,
    have their statements run in the background by ``deferred``; the others run here.
    """

    def __init__(self, connection: Any, vendor: Vendor) -> None:
        self.connection = connection
        self.vendor = vendor
        self.in_editor = 0
        self.sink: list[str] | None = None
        self.python_sink: list[str] | None = None
        self.deferred: Deferred | None = None
        self.deferrable = False
        self.label = ""

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        sink = self.python_sink if self.python_sink is not None else self.sink if self.in_editor else None
        deferred = self.deferred
        if deferred is not None and deferred.in_thread():
            # A job's own query (the foreign-key check): it is not the migration's.
            return execute(sql, params, many, context)
        if deferred is not None:
            in_background = not many and (
                (self.in_editor and self.deferrable and self.python_sink is None) or sql.startswith(_CONTROL)
            )
            if in_background:
                if sink is not None:  # its quoting takes the thread's lock (Deferred.installed)
                    sink.append(self.vendor.render_executed(self.connection, sql, params))
                deferred.statement(self.label, context["cursor"], sql, params)
                return None
            deferred.drain()
        result = execute(sql, params, many, context)
        if sink is not None:
            sink.append(self.vendor.render_executed(self.connection, sql, params))
        return result

    def watch(self, editor: Any) -> None:
        original = editor.execute

        def execute(sql: Any, params: Any = ()) -> Any:
            self.in_editor += 1
            try:
                return original(sql, params)
            finally:
                self.in_editor -= 1

        editor.execute = execute
