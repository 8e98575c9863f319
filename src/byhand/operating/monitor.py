"""A second connection beside the applying one: who blocks a statement, how far an index
build got, and cancelling blockers; and the watcher thread that reports them while a
statement runs longer than a second."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from byhand.runbook import Step
from byhand.threads import set_event, signals_blocked
from byhand.vendors.statements import normalize_query, tables_named_in
from byhand.vendors.target import Blocker, Target

__all__ = ["BlockerAction", "Monitor", "Watcher", "actions_on"]

BlockerAction = Literal["blocker-cancelled", "blocker-terminated"]


class Monitor:
    """The second connection, opened on first use and shared (one user at a time) by the
    run and its watcher thread. Blockers' queries come with their literals replaced by
    ``?`` (they may hold secrets) unless ``full_queries``."""

    def __init__(self, target: Target, *, full_queries: bool = False) -> None:
        self.target = target
        self.full_queries = full_queries
        self.errors = target.driver_errors()
        self._connection: Target | None = None
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Target]:
        with self._lock:
            if self._connection is None:
                self._connection = self.target.open_monitor()
            yield self._connection

    def blockers(self, step: Step | None, *, older_than: timedelta) -> list[Blocker]:
        """Who blocks the applying session now (none when the monitor cannot tell)."""
        try:
            with self.connection() as monitor:
                return self.find(monitor, self.target.session_id(), step, older_than=older_than)
        except self.errors:
            return []

    def find(self, monitor: Target, session: int, step: Step | None, *, older_than: timedelta) -> list[Blocker]:
        """Who blocks ``session`` running ``step``, asked on ``monitor``: sessions that hold
        a lock it waits for, and, for a statement that waits for older transactions
        (CONCURRENTLY), the sessions holding old snapshots."""
        tables = tables_named_in(step.sql) if step else []
        snapshots = step is not None and self.target.blocks_nobody_while_waiting(step.sql)
        found = monitor.find_blockers(
            waiting_session=session, tables=tables, older_than=older_than, snapshots=snapshots
        )
        if self.full_queries:
            return found
        strings = self.target.vendor.double_quoted_strings
        return [
            replace(b, query=normalize_query(b.query, double_quoted_strings=strings) if b.query else b.query)
            for b in found
        ]

    def act(self, blocker: Blocker, action: BlockerAction) -> None:
        with self.connection() as monitor:
            (monitor.terminate if action == "blocker-terminated" else monitor.cancel)(blocker)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def actions_on(blockers: list[Blocker], *, terminate_idle_after: timedelta) -> list[tuple[Blocker, BlockerAction]]:
    """What to do to each blocker when the operator asked to: cancel the query of an active
    one, terminate a session idle in transaction for longer than ``terminate_idle_after``
    (cancelling does nothing to it), and leave alone those the vendor only says may block."""
    chosen: list[tuple[Blocker, BlockerAction]] = []
    for blocker in blockers:
        if not blocker.certain:
            continue
        idle = blocker.is_idle_in_transaction()
        if idle and (blocker.transaction_age or timedelta(0)) < terminate_idle_after:
            continue
        chosen.append((blocker, "blocker-terminated" if idle else "blocker-cancelled"))
    return chosen


#: What the watcher watches: the event data of a statement's position, its step, when it began.
Watched = tuple[dict[str, Any], Step, float]


class Watcher(threading.Thread):
    """Looks every 0.1 s; reports once a second while a statement runs longer than one."""

    interval = 1.0  # between reports
    tick = 0.1  # between looks

    def __init__(self, monitor: Monitor, *, emit: Callable[..., None], clock: Callable[[], float]) -> None:
        super().__init__(name="byhand-watcher", daemon=True)
        self.monitor = monitor
        self.session = monitor.target.session_id()  # the applying connection's server session
        self.emit = emit
        self.clock = clock
        self.current: Watched | None = None
        self.stopped = threading.Event()
        self.reported = 0.0

    @contextmanager
    def watching(self, where: dict[str, Any], step: Step) -> Iterator[None]:
        """Watch this statement (``where``: its position as event data) while it runs."""
        self.reported = 0.0
        self.current = (where, step, self.clock())
        try:
            yield
        finally:
            self.current = None

    def start(self) -> None:
        with signals_blocked():  # SIGINT and the like must interrupt the main thread's wait
            super().start()

    def stop(self) -> None:
        set_event(self.stopped)

    def run(self) -> None:
        while not self.stopped.wait(self.tick):
            current = self.current
            if current is None:
                continue
            where, step, began = current
            elapsed = self.clock() - began
            if elapsed < self.interval or elapsed - self.reported < self.interval:
                continue
            self.reported = elapsed
            try:
                with self.monitor.connection() as monitor:
                    blockers = self.monitor.find(monitor, self.session, step, older_than=timedelta(seconds=elapsed))
                    progress = monitor.progress(session=self.session)
            except Exception:  # noqa: BLE001 -- watching must never break the run
                continue
            if self.current is current:
                self.emit(
                    "waiting", **where, elapsed=elapsed, progress=progress, blockers=[b.as_dict() for b in blockers]
                )
