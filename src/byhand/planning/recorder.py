"""What the schema editor sends to the scratch copy, statement by statement, kept apart
from what RunPython code sends; and, where the vendor gains by it, sent through the
statement thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from byhand.planning.statement_thread import StatementThread
from byhand.vendors import Vendor

__all__ = ["StatementRecorder"]

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
        sink = self._python_sink if self._python_sink is not None else self._sink if self._in_editor else None
        thread = self.thread
        if thread is not None and thread.in_thread():
            # A job's own query (the foreign-key check): it is not the migration's.
            return execute(sql, params, many, context)
        if thread is not None:
            in_background = not many and (
                (self._in_editor and self._background and self._python_sink is None) or sql.startswith(_CONTROL)
            )
            if in_background:
                if sink is not None:  # its quoting takes the thread's lock (StatementThread._quoting)
                    sink.append(self.vendor.render_executed(self.connection, sql, params))
                thread.statement(self.label, context["cursor"], sql, params)
                return None
            thread.drain()
        result = execute(sql, params, many, context)
        if sink is not None:
            sink.append(self.vendor.render_executed(self.connection, sql, params))
        return result
