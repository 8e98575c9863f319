"""Apply a runbook, and SIGKILL this process at the Nth event of the given kinds.

Usage: python kill_apply.py RUNBOOK DATABASE_URL KINDS N
(KINDS is comma-separated event names). Exits 0 if the run ended before the Nth
event. Used by the kill tests; imports byhand only, never Django.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from byhand.applying import ApplyOptions, apply_runbook, connect
from byhand.events import Event
from byhand.runbook import parse_runbook
from byhand.vendors import get_target
from byhand.vendors.target import parse_database_url


def main() -> int:
    path, url, kinds, wanted = sys.argv[1], sys.argv[2], set(sys.argv[3].split(",")), int(sys.argv[4])
    seen = 0

    def sink(event: Event) -> None:
        nonlocal seen
        if event.name in kinds:
            seen += 1
            if seen == wanted:
                os.kill(os.getpid(), signal.SIGKILL)

    target = get_target(parse_database_url(url))
    connect(target)
    apply_runbook(
        parse_runbook(Path(path).read_text()), target, options=ApplyOptions(skip_manual_steps=True), on_event=sink
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
