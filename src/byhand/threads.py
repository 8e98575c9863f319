"""The threads byhand starts beside the main thread (the watcher, the rehearsal's statement
thread, the scratch copy's workers): none of them may take the signals that stop a run."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["set_event", "signals_blocked"]


@contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP blocked in this thread for a while; a thread started
    inside keeps them blocked for good (it starts with its creator's mask, from its first
    instruction), and so does every thread it starts. Sent to the process, they then go
    to the main thread and interrupt what it waits for (a statement's socket, a lock, a
    child process); taken by another thread, they would only be noted there until that
    wait ended by itself. Linux gives them to the main thread whenever it can take them;
    POSIX lets any thread that does not block them take them.

    Also around a short call in the main thread that takes a lock another thread needs and
    that is taken in Python code (threading.Event.set, queue.Queue.put): a KeyboardInterrupt
    raised by a signal handler just after the lock is taken, before the ``with`` that
    releases it has begun, leaves it held, and the other thread waits for it forever.
    Blocked, the signal is raised as the block ends, once the call is done.

    Not for a thread that starts programs (pg_dump, mysqldump, the vendor's client): a
    child process inherits the mask, and would then go on through Ctrl-C, SIGTERM and a
    closed terminal (Python's subprocess does not reset it)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    # The mask is read first and blocked inside the try: a signal taken just before the
    # block is raised as the call that blocks returns, and the mask must be put back then.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def set_event(event: threading.Event) -> None:
    """``event.set()`` from the main thread: Event.set takes its lock in Python code, so with
    the signals blocked (see signals_blocked)."""
    with signals_blocked():
        event.set()
