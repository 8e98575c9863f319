"""One operator at a time: the run lock, held on the applying connection while a run lasts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from byhand.exceptions import RunLockHeld
from byhand.vendors.target import Target

__all__ = ["run_lock"]

#: Seconds between two tries while another run holds the lock.
POLL = 0.1


@contextmanager
def run_lock(
    target: Target,
    name: str,
    *,
    wait: timedelta,
    holder: Callable[[], str],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Iterator[None]:
    """Hold the run lock ``name`` on ``target`` for the block. Wait up to ``wait`` for it (a run
    that just died may hold it for the moment its server session takes to notice), then
    refuse with RunLockHeld naming ``holder()``. Released on the way out; a lost session has
    released it already."""
    deadline = clock() + wait.total_seconds()
    while not target.try_run_lock(name):
        if clock() >= deadline:
            raise RunLockHeld(holder())
        sleep(POLL)
    try:
        yield
    finally:
        try:
            target.release_run_lock(name)
        except Exception:  # noqa: BLE001 -- the connection is gone, and the lock with it
            pass
