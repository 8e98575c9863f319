"""The rehearsal's statement thread: the scratch copy runs the schema editor's statements
in a thread of their own while Django computes the next states, so that the database
works on one core while Python works on the other. Anything that reads the database
waits until every earlier statement has run, so it sees exactly what it would have seen
without the thread.

The caller's thread (the main thread, where SIGTERM and Ctrl-C raise KeyboardInterrupt at
any point) talks to the statement thread only through queue.SimpleQueue, whose put and get
are single calls into C: queue.Queue takes its lock in Python code, and an interruption
there left the lock held, so that the statement thread, and the caller's clean-up behind
it, waited for it forever (``byhand sql`` hung on a SIGTERM during a rehearsal).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import NotSupportedError

from byhand.threads import signals_blocked
from byhand.vendors import Vendor

__all__ = ["SWITCH_INTERVAL", "BackgroundFailure", "StatementThread"]

#: Seconds a thread may hold the GIL while another waits for it, during a rehearsal
#: (Python's default is 5 ms). SQLite's driver takes the GIL back several times per
#: statement (prepare, step), so on SQLite the thread spent most of its time waiting for
#: it; benchmarks/RESULTS.md has what 0.5 ms, then 0.1 ms, gained.
SWITCH_INTERVAL = 0.0001

#: A Django connection's transaction control, run as jobs.
_TRANSACTION_CONTROL = ("_commit", "_rollback", "_set_autocommit")
#: SQLite's foreign-key switches and check around every schema editor, run as jobs.
_CONSTRAINT_SWITCHES = ("disable_constraint_checking", "check_constraints", "enable_constraint_checking")

Job = tuple[str, Callable[[], None]]
#: Runs a statement (the callable given) on a driver cursor, and notes what it did.
Observe = Callable[[Callable[[], Any], Any], None]


class BackgroundFailure(BaseException):
    """A statement run in the background failed: raised at the next point that waits for
    the background, naming the migration the statement belongs to. A BaseException, so
    that no operation's ``except Exception`` can mistake it for a failure of its own."""

    def __init__(self, label: str, error: BaseException) -> None:
        super().__init__(label, error)
        self.label = label
        self.error = error


@dataclass(frozen=True)
class _Patch:
    """An attribute the thread replaces while installed; put back by deleting the instance
    attribute (the class's method shows again), or by setting the original back."""

    owner: Any
    name: str
    replacement: Callable[..., Any]
    original: Callable[..., Any]
    delete: bool

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def undo(self) -> None:
        if self.delete:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self.original)  # mysqlclient's connection refuses delattr


class StatementThread:
    """Runs a Django connection's statements and transaction control in order, in a
    thread, on the same driver connection; ``drain()`` waits until all have run.

    Only what returns nothing to its caller goes to the thread: the schema editor's
    statements of Django's own operations, BEGIN, savepoints, commit, rollback and
    autocommit switches. While it is installed, the connection waits for the thread
    before anything else touches the driver (the recorder drains before any other
    statement). The first failure stops the thread's work; every later ``drain()``
    raises it as BackgroundFailure. When the caller fails, what is still queued is dropped.
    """

    def __init__(self, connection: Any, vendor: Vendor) -> None:
        self.connection = connection
        self.vendor = vendor
        #: Jobs; a number asks the thread to put it on ``drained`` (every job before it has
        #: run); None stops the thread.
        self.jobs: queue.SimpleQueue[Job | int | None] = queue.SimpleQueue()
        self.drained: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.drains = 0
        #: Jobs handed over (counted by the caller) and done or skipped (by the thread).
        self.handed = self.done = 0
        self.failure: BackgroundFailure | None = None
        self.abandoned = False
        #: Held while the thread uses the driver connection, and by the caller around
        #: what reads driver state without going through the thread (client-side quoting).
        self.driver_lock = threading.RLock()
        self.thread = threading.Thread(target=self._work, name="byhand-rehearsal", daemon=True)

    def statement(self, label: str, cursor: Any, sql: str, params: Any, observe: Observe | None = None) -> None:
        """Run ``sql`` in the thread on ``cursor`` (a Django CursorWrapper), as its execute()
        would have; the cursor's driver cursor is the thread's from now on (it closes it).
        ``observe`` runs it instead, given the run and the driver cursor (see Observer)."""
        connection = self.connection
        connection.validate_no_broken_transaction()
        driver_cursor = cursor.cursor
        if isinstance(driver_cursor, _Handed):  # a cursor used again: a driver cursor of its own
            driver_cursor = connection.create_cursor()
        cursor.cursor = _Handed()

        def execute() -> None:
            if params is None:
                driver_cursor.execute(sql)
            else:
                driver_cursor.execute(sql, params)

        def run() -> None:
            try:
                with connection.wrap_database_errors:
                    if observe is None:
                        execute()
                    else:
                        observe(execute, driver_cursor)
            finally:
                driver_cursor.close()

        self.job(label, run)

    def job(self, label: str, run: Callable[[], None]) -> None:
        """Hand ``run`` to the thread, for the migration ``label``."""
        self.handed += 1
        self.jobs.put((label, run))

    def pending(self) -> int:
        """How many jobs handed over are not done yet."""
        return self.handed - self.done

    def drain(self) -> None:
        """Wait until every statement handed over so far has run; raise the first failure."""
        self.drains += 1
        self.jobs.put(self.drains)
        while self.drained.get() != self.drains:
            pass  # the number of a drain that was interrupted while it waited
        if self.failure is not None:
            raise self.failure

    def in_thread(self) -> bool:
        """Whether the caller is the thread itself (running a job)."""
        return threading.current_thread() is self.thread

    @contextmanager
    def installed(self, label: Callable[[], str], *, twin: Any = None) -> Iterator[StatementThread]:
        """Route the connection's transaction control and SQLite's constraint switches
        through the thread (``label()`` names the migration they belong to) and guard its
        quoting; on the way out, wait for the thread (raising its failure unless something
        else is raised already) and stop it."""
        patches = [*self._transaction_control(label), *self._constraint_switches(label), *self._quoting(twin)]
        for patch in patches:
            patch.apply()
        # The thread needs the GIL back after each statement, while this thread computes
        # states and holds it: by default it waits up to 5 ms for that, every time.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL))
        with signals_blocked():
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
            for patch in reversed(patches):
                patch.undo()

    def _transaction_control(self, label: Callable[[], str]) -> list[_Patch]:
        connection = self.connection

        def deferring(original: Callable[..., None]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                self.job(label(), lambda: original(*args))

            return call

        return [
            _Patch(connection, name, deferring(getattr(connection, name)), getattr(connection, name), delete=True)
            for name in _TRANSACTION_CONTROL
        ]

    def _constraint_switches(self, label: Callable[[], str]) -> list[_Patch]:
        """disable_constraint_checking, check_constraints and enable_constraint_checking
        as jobs. SQLite's schema editor calls them on the way in and out of every
        migration, and reading the pragma back would otherwise wait for the thread each
        time. A failure (the switch did not take, a row breaks a foreign key) is raised
        by the next drain(), as any statement's."""
        connection = self.connection
        disable, check, enable = (getattr(connection, name) for name in _CONSTRAINT_SWITCHES)

        def disabled() -> None:
            if not disable():
                raise NotSupportedError(
                    "foreign key checks could not be turned off on the scratch copy "
                    "(a transaction was open when a schema editor started)."
                )

        def disable_constraint_checking() -> bool:
            self._shared_job(label(), disabled)
            return True  # the job raises if it was not so

        def check_constraints(table_names: Any = None) -> None:
            self._shared_job(label(), lambda: check(table_names))

        def enable_constraint_checking() -> None:
            self._shared_job(label(), enable)

        replacements: tuple[Callable[..., Any], ...] = (
            disable_constraint_checking,
            check_constraints,
            enable_constraint_checking,
        )
        originals = (disable, check, enable)
        return [
            _Patch(connection, name, replacement, original, delete=True)
            for name, replacement, original in zip(_CONSTRAINT_SWITCHES, replacements, originals, strict=True)
        ]

    def _shared_job(self, label: str, run: Callable[[], Any]) -> None:
        """A job that opens Django cursors, which check the thread that made the connection."""
        connection = self.connection

        def shared() -> None:
            connection.inc_thread_sharing()
            try:
                run()
            finally:
                connection.dec_thread_sharing()

        self.job(label, shared)

    def _quoting(self, twin: Any) -> list[_Patch]:
        """Client-side quoting reads the driver connection (PostgreSQL's compose_sql,
        mysqlclient's escape and literal), which the thread may be using. The thread
        quotes on it under its lock; the caller quotes on ``twin`` (Vendor.twin: a second
        connection set up as this one, so the same text) when there is one, instead of
        waiting for the thread to finish its statement."""
        patches = []
        for owner_name, name in self.vendor.quoting_methods:
            owner = getattr(self.connection, owner_name)
            original = getattr(owner, name)
            patches.append(_Patch(owner, name, self._quote(original, owner_name, name, twin), original, delete=False))
        return patches

    def _quote(self, original: Callable[..., Any], owner: str, name: str, twin: Any) -> Callable[..., Any]:
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
            if job is None:
                return
            if isinstance(job, int):
                self.drained.put(job)
                continue
            label, run = job
            if self.failure is None and not self.abandoned:
                with self.driver_lock:
                    try:
                        run()
                    except BaseException as exc:  # noqa: BLE001 -- handed to the caller by drain()
                        self.failure = BackgroundFailure(label, exc)
            self.done += 1


class _Handed:
    """Stands in for a driver cursor handed to the background thread: the caller's
    cursor wrapper may still close it, which is then the thread's business."""

    def close(self) -> None:
        pass
