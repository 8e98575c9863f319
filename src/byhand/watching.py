"""While a statement runs longer than a second, report what blocks it and how far an index
build got, from a second connection, in a thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from byhand.runbook import Step
from byhand.vendors.target import Target, tables_named_in

__all__ = ["Watcher"]


class Watcher(threading.Thread):
    """Looks every 0.1 s; reports once a second while a statement runs longer than one."""

    interval = 1.0  # between reports
    tick = 0.1  # between looks

    def __init__(
        self,
        *,
        session: int,
        monitor: Callable[[], AbstractContextManager[Target]],
        emit: Callable[..., None],
        clock: Callable[[], float],
    ) -> None:
        super().__init__(name="byhand-watcher", daemon=True)
        self.session = session  # the applying connection's server session
        self.monitor = monitor
        self.emit = emit
        self.clock = clock
        self.current: tuple[str | None, int, int, Step, float] | None = None
        self.stopped = threading.Event()
        self.reported = 0.0

    def watch(self, migration: str | None, index: int, total: int, step: Step | None) -> None:
        """Watch this statement from now on (None: nothing runs)."""
        self.reported = 0.0
        self.current = (migration, index, total, step, self.clock()) if step is not None else None

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.wait(self.tick):
            current = self.current
            if current is None:
                continue
            migration, index, total, step, began = current
            elapsed = self.clock() - began
            if elapsed < self.interval or elapsed - self.reported < self.interval:
                continue
            self.reported = elapsed
            try:
                with self.monitor() as monitor:
                    blockers = monitor.find_blockers(
                        waiting_session=self.session,
                        tables=tables_named_in(step.sql),
                        older_than=timedelta(seconds=elapsed),
                    )
                    progress = monitor.progress(session=self.session)
            except Exception:  # noqa: BLE001 -- watching must never break the run
                continue
            if self.current is current:
                self.emit(
                    "waiting",
                    migration=migration,
                    index=index,
                    total=total,
                    elapsed=elapsed,
                    progress=progress,
                    blockers=[b.as_dict() for b in blockers],
                )
