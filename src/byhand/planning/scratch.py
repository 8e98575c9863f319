"""The scratch copy: a schema-only copy of the target to rehearse on, and the alias
pointed at it.

While a plan is compiled, the target's alias points at the scratch copy
(``use_database``), so that every schema editor, ``atomic()`` and ORM query Django
makes through the alias lands there, and nothing reaches the target.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import connections

from byhand.exceptions import RehearsalError
from byhand.threads import set_event, signals_blocked
from byhand.vendors import ScratchDatabase, Vendor, get_vendor
from byhand.vendors.base import SCRATCH_PREFIX, own_connection

__all__ = ["check_on_scratch", "scratch_copy", "scratch_started", "use_database"]


@contextmanager
def scratch_started(
    database: str, *, scratch_database: str | None = None, prefix: str = SCRATCH_PREFIX
) -> Iterator[Callable[[], ScratchDatabase]]:
    """Start the schema-only scratch copy of ``database`` now, so that a server makes it
    while the caller loads the migrations and plans; yields what compile_runbook waits on.

    The copy is dropped on the way out, also on failure. When nothing asked for it (an
    empty plan, an error while planning), it is dropped unused and a failure to make it
    (no CREATEDB, say) is not reported: only a rehearsal needs it. SQLite's copy, a file
    made in a moment, is made on first use only.
    """
    target = connections[database]
    vendor = get_vendor(target.vendor)
    server = connections[scratch_database] if scratch_database else target
    if server.vendor != target.vendor:
        raise RehearsalError(
            f"the scratch alias '{server.alias}' is {server.vendor}, the target is {target.vendor}; "
            "the rehearsal needs the same vendor and server version."
        )
    with scratch_copy(vendor, target, server=server, prefix=prefix) as scratch:
        yield scratch


@contextmanager
def scratch_copy(
    vendor: Vendor, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX
) -> Iterator[Callable[[], ScratchDatabase]]:
    """A schema-only copy of ``target`` on ``server``'s server, named ``prefix``<pid>_<random>,
    dropped afterwards, also on failure.

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
            # Not with signals blocked: the copy's client programs would inherit the mask.
            copies.append(pool.submit(_copy_with_own_connections, vendor, target, server, prefix, unwanted))

        def scratch() -> ScratchDatabase:
            if not copies:
                # Made here, with Ctrl-C and SIGTERM held until it is made and noted (a
                # moment: it starts no program), so that the way out knows whether there is
                # a copy to drop. Taken in between, they could leave the copy behind, or a
                # result never set, which the way out would wait for forever.
                made: Future[ScratchDatabase] = Future()
                with signals_blocked():
                    try:
                        made.set_result(vendor.make_scratch(target, server=server, prefix=prefix))
                    except BaseException as exc:  # noqa: BLE001 -- raised again by result() below
                        made.set_exception(exc)
                    copies.append(made)
            return copies[0].result()

        try:
            yield scratch
        finally:
            set_event(unwanted)  # no one asked for it, or the caller failed: stop the dump or load under way
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


def _copy_with_own_connections(
    vendor: Vendor, target: Any, server: Any, prefix: str, unwanted: threading.Event
) -> ScratchDatabase:
    own_target = own_connection(target)
    own_server = own_connection(server)
    try:
        return vendor.make_scratch(own_target, server=own_server, prefix=prefix, unwanted=unwanted)
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
