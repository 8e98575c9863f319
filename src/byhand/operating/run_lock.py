"""One operator at a time: the run lock, one per database whatever the journal table is
called, held on the connection of whatever writes migrations or their rows (apply, and
record, unrecord and run-python) for as long as it does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from byhand.exceptions import RunLockHeld
from byhand.operating.journal import Journal
from byhand.vendors.base import Vendor
from byhand.vendors.params import ConnectionParams
from byhand.vendors.target import Target

__all__ = ["RUN_LOCK", "RUN_LOCK_WAIT", "describe_holder", "locked_target", "run_lock"]

#: The run lock's name (PostgreSQL: an advisory lock's key; MySQL: GET_LOCK's name, with the
#: database's; SQLite: ``<file>.byhand_journal.lock``): what byhand's run lock has always
#: been called with the default journal, now whatever the journal is called.
RUN_LOCK = "byhand_journal"
#: How long to wait for the run lock by default: a run that just died holds it for the
#: moment its server session takes to notice.
RUN_LOCK_WAIT = timedelta(seconds=5)
#: Seconds between two tries while another run holds the lock.
POLL = 0.1


@contextmanager
def run_lock(
    target: Target,
    *,
    wait: timedelta = RUN_LOCK_WAIT,
    holder: Callable[[], str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the run lock on ``target`` for the block. Wait up to ``wait`` for it, then
    refuse with RunLockHeld naming ``holder()`` (by default what the server says of the
    holder). Released on the way out; a lost session has released it already."""
    deadline = clock() + wait.total_seconds()
    while not target.try_run_lock(RUN_LOCK):
        if clock() >= deadline:
            raise RunLockHeld(holder() if holder else describe_holder(target))
        sleep(POLL)
    try:
        yield
    finally:
        try:
            target.release_run_lock(RUN_LOCK)
        except Exception:  # noqa: BLE001 -- the connection is gone, and the lock with it
            pass


def describe_holder(target: Target, journal: Journal | None = None) -> str:
    """Who holds the run lock, as the server says, and the run ``journal`` says is going on."""
    described = target.run_lock_holder(RUN_LOCK) or "the holder could not be identified"
    runs = [r for r in journal.runs(limit=5) if r.outcome == "running or crashed"] if journal else []
    if runs:
        run = runs[0]
        described += (
            f"; the journal names run {run.run_id} by {run.operator} (pid {run.detail.get('pid')}), "
            f"started {run.started_at}"
        )
    return described


@contextmanager
def locked_target(vendor: Vendor, params: ConnectionParams, *, application: str) -> Iterator[Target]:
    """A connection to ``params``'s database holding the run lock for the block (record,
    unrecord and run-python: nothing writes migrations or their rows while apply runs)."""
    target = vendor.target(params)
    target.connect(application=application)
    try:
        with run_lock(target):
            yield target
    finally:
        target.close()
