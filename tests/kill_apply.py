"""Apply a runbook, and SIGKILL this process at the Nth event of the given kinds
(after DELAY seconds, if given: to die inside the statement that event starts).

Usage: python kill_apply.py RUNBOOK DATABASE_URL KINDS N [DELAY]
(KINDS is comma-separated event names). Exits 0 if the run ended before the Nth
event. Used by the kill tests, also through fork(); imports byhand only, never Django.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from byhand.events import Event
from byhand.operating.applying import ApplyOptions, apply_runbook
from byhand.runbook import parse_runbook
from byhand.vendors import get_target
from byhand.vendors.params import parse_database_url


def kill_point(event: Event) -> tuple[str, object, object]:
    """A boundary of the run: the event and its migration and statement. A statement retried
    after a lock timeout passes the same boundaries again; counting them once keeps the
    Nth the same whether or not a retry happened."""
    return event.name, event.data.get("migration"), event.data.get("index")


def run_until_killed(
    path: str,
    url: str,
    kinds: set[str],
    wanted: int,
    delay: float | None = None,
    *,
    passed: frozenset[tuple[str, object, object]] = frozenset(),
    report: int | None = None,
) -> None:
    """Die at the Nth point of the given kinds, not counting the points in ``passed``
    (those an earlier, killed run went through); the point is written to the file
    descriptor ``report`` first, if given."""
    seen: set[tuple[str, object, object]] = set()

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def sink(event: Event) -> None:
        point = kill_point(event)
        if event.name in kinds and point not in seen and point not in passed:  # a retry passes them again
            seen.add(point)
            if len(seen) == wanted:
                if report is not None:
                    os.write(report, repr(point).encode())
                if delay is None:
                    die()
                threading.Timer(delay, die).start()

    target = get_target(parse_database_url(url))
    target.connect()
    apply_runbook(
        parse_runbook(Path(path).read_text()), target, options=ApplyOptions(skip_manual_steps=True), on_event=sink
    )


if __name__ == "__main__":
    delay = float(sys.argv[5]) if len(sys.argv) > 5 else None
    run_until_killed(sys.argv[1], sys.argv[2], set(sys.argv[3].split(",")), int(sys.argv[4]), delay)
    sys.exit(0)
