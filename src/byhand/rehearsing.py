"""The rehearsal: a schema-only scratch copy of the target, and what Django sends to it.

While a plan is compiled, the target's alias points at the scratch copy
(``use_database``), so that every schema editor, ``atomic()`` and ORM query Django
makes through the alias lands there; ``StatementRecorder`` keeps what the schema
editor executed, statement by statement, apart from what RunPython code executed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import connections

from byhand.vendors import ScratchDatabase, Vendor

__all__ = ["StatementRecorder", "scratch_copy", "use_database"]


@contextmanager
def scratch_copy(vendor: Vendor, target: Any, *, server: Any) -> Iterator[Future[ScratchDatabase]]:
    """A schema-only copy of ``target`` on ``server``'s server, dropped afterwards, also on failure.

    For a server vendor the copy (dump, CREATE DATABASE, load: other processes, mostly)
    is made in a thread while the caller computes Django's states; ``.result()`` waits
    for it. The thread uses connections of its own: Django's are bound to their thread.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="byhand-scratch") as pool:
        if vendor.copies_in_background:
            future = pool.submit(_copy_with_own_connections, vendor, target, server)
        else:
            future = Future()
            future.set_result(vendor.make_scratch(target, server=server))
        try:
            yield future
        finally:
            if future.exception() is None:
                vendor.drop_scratch(future.result(), server=server)


def _copy_with_own_connections(vendor: Vendor, target: Any, server: Any) -> ScratchDatabase:
    own_target = target.__class__(dict(target.settings_dict), target.alias)
    own_server = server.__class__(dict(server.settings_dict), server.alias)
    try:
        return vendor.make_scratch(own_target, server=own_server)
    finally:
        own_target.close()
        own_server.close()


@contextmanager
def use_database(alias: str, database_settings: dict[str, Any]) -> Iterator[Any]:
    """Point the alias at another database (the scratch copy) for a while, so that
    everything Django does through the alias (schema editor, atomic(), RunPython's
    ORM, routers) lands there, and nothing reaches the target."""
    original = connections[alias]
    scratch = original.__class__(database_settings, alias)
    connections[alias] = scratch
    try:
        yield scratch
    finally:
        scratch.close()
        connections[alias] = original


class StatementRecorder:
    """Captures what the schema editor sends to the database, statement by statement.

    A statement is kept once it has succeeded: an operation may catch the failure of
    its own statement (django-celery-results' TryRemoveIndex drops an index that may
    not exist), and then migrate changed nothing, so the runbook must not hold it.
    """

    def __init__(self, connection: Any, vendor: Vendor) -> None:
        self.connection = connection
        self.vendor = vendor
        self.in_editor = 0
        self.sink: list[str] | None = None
        self.python_sink: list[str] | None = None

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        sink = self.python_sink if self.python_sink is not None else self.sink if self.in_editor else None
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
