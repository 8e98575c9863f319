"""What the schema editor sends to the scratch copy, statement by statement, kept apart
from what RunPython code sends; and, where the vendor gains by it, sent through the
statement thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from byhand.planning.statement_thread import Observe, StatementThread
from byhand.vendors import Vendor

__all__ = ["Recorded", "StatementRecorder", "observed_of"]

#: Statements that return nothing and only steer the transaction: they may run in the background.
_CONTROL = ("BEGIN", "SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


class StatementRecorder:
    """An execute wrapper for the scratch connection that captures what the schema editor
    executes, statement by statement, into the list ``capturing`` names.

    A statement is kept once it has succeeded: an operation may catch the failure of
    its own statement (django-celery-results' TryRemoveIndex drops an index that may
    not exist), and then migrate changed nothing, so the runbook must not hold it.
    That is why only Django's own operations (``background``), which catch nothing,
    have their statements run in the statement thread; the others run here.
    """

    def __init__(self, connection: Any, vendor: Vendor) -> None:
        self.connection = connection
        self.vendor = vendor
        self.thread: StatementThread | None = None
        self.label = ""  # the migration being rehearsed, for the thread's failures
        self._in_editor = 0
        self._sink: list[str] | None = None
        self._python_sink: list[str] | None = None
        self._background = False
        self.observer = vendor.observer(connection)

    @contextmanager
    def recording(self, label: str) -> Iterator[None]:
        """Watch the connection for the rehearsal of ``label`` (a migration)."""
        previous, self.label = self.label, label
        try:
            with self.connection.execute_wrapper(self):
                yield
        finally:
            self.label = previous

    @contextmanager
    def capturing(self, sink: list[str], *, background: bool = False) -> Iterator[None]:
        """The schema editor's statements go to ``sink`` for a while; ``background``: they
        may run in the statement thread (Django's own operations, which catch no error)."""
        previous = self._sink, self._background
        self._sink, self._background = sink, background
        try:
            yield
        finally:
            self._sink, self._background = previous

    @contextmanager
    def in_background(self, allowed: bool) -> Iterator[None]:
        """Whether the statements of the operation run now may go to the statement thread."""
        previous, self._background = self._background, allowed
        try:
            yield
        finally:
            self._background = previous

    @contextmanager
    def capturing_python(self, sink: list[str]) -> Iterator[None]:
        """What RunPython code executes goes to ``sink`` (shown in the runbook, never run)."""
        previous, self._python_sink = self._python_sink, sink
        try:
            yield
        finally:
            self._python_sink = previous

    @contextmanager
    def threaded(self, *, enabled: bool) -> Iterator[None]:
        """Where the vendor gains by it, run the statements that may go to the background
        in the statement thread while the next states are computed here."""
        if not enabled:
            yield
            return
        self.thread = StatementThread(self.connection, self.vendor)
        try:
            with self.vendor.twin(self.connection) as twin, self.thread.installed(lambda: self.label, twin=twin):
                yield
        finally:
            self.thread = None

    def watch(self, editor: Any) -> None:
        """Count what ``editor`` executes as the schema editor's (not RunPython's ORM)."""
        original = editor.execute

        def execute(sql: Any, params: Any = ()) -> Any:
            self._in_editor += 1
            try:
                return original(sql, params)
            finally:
                self._in_editor -= 1

        editor.execute = execute

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        python = self._python_sink is not None
        sink = self._python_sink if python else self._sink if self._in_editor else None
        thread = self.thread
        if thread is not None and thread.in_thread():
            # A job's own query (the foreign-key check): it is not the migration's.
            return execute(sql, params, many, context)
        # A statement of the schema editor's (not a savepoint it sets): what it does is observed.
        observed: dict[str, Any] | None = (
            {} if sink is not None and not python and not sql.startswith(_CONTROL) else None
        )
        if thread is not None:
            in_background = not many and (
                (self._in_editor and self._background and not python) or sql.startswith(_CONTROL)
            )
            if in_background:
                if sink is not None:  # its quoting takes the thread's lock (StatementThread._quoting)
                    sink.append(Recorded(self.vendor.render_executed(self.connection, sql, params), observed))
                thread.statement(self.label, context["cursor"], sql, params, self._observe(sql, params, observed))
                return None
            thread.drain()
        if observed is None or many:
            self.observer.touched(created=python)
            result = execute(sql, params, many, context)
        else:
            result, seen = self.observer.observe(
                lambda: execute(sql, params, many, context), sql, context["cursor"].cursor, params
            )
            observed.update(seen)
        if sink is not None:
            sink.append(Recorded(self.vendor.render_executed(self.connection, sql, params), observed))
        return result

    def _observe(self, sql: str, params: Any, observed: dict[str, Any] | None) -> Observe | None:
        if observed is None:
            return None

        def observe(run: Callable[[], Any], cursor: Any) -> None:
            observed.update(self.observer.observe(run, sql, cursor, params, batch=True)[1])

        return observe


class Recorded(str):
    """A statement as recorded, with what it did on the scratch copy (filled in when it has
    run there: later, when it runs in the statement thread); None: not observed."""

    observed: dict[str, Any] | None

    def __new__(cls, sql: str, observed: dict[str, Any] | None) -> Recorded:
        recorded = super().__new__(cls, sql)
        recorded.observed = observed
        return recorded


def observed_of(sql: str) -> dict[str, Any] | None:
    """What a recorded statement did on the scratch copy, when it was observed."""
    return sql.observed if isinstance(sql, Recorded) else None
