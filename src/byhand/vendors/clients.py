"""The vendors' command-line clients (pg_dump, psql, mysqldump, mysql), run for the scratch copy."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Sequence

from byhand.exceptions import CopyUnwanted, RehearsalError
from byhand.threads import set_event, signals_blocked

__all__ = ["UNWANTED_POLL", "run_client"]

#: Seconds between two looks at whether a vendor CLI's work is still wanted.
UNWANTED_POLL = 0.05


def run_client(
    args: Sequence[str],
    *,
    env: dict[str, str] | None,
    stdin: str | None = None,
    what: str,
    unwanted: threading.Event | None = None,
) -> str:
    """Run a vendor CLI and return its output.

    The password travels in the environment only, never on the command line,
    so that neither ``ps`` nor an error message shows it. Once ``unwanted`` is set
    (nobody needs the result any more), the program is killed and CopyUnwanted raised.
    """
    full_env = {**os.environ, **(env or {})}
    try:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE if stdin is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            text=True,
        )
    except FileNotFoundError:
        raise RehearsalError(
            f"could not {what}: the program {args[0]!r} is not installed. Install the "
            "database's client tools on this host (same major version as the server)."
        ) from None
    stopped = threading.Event()
    with process:
        if unwanted is not None:
            finished = threading.Event()
            watcher = threading.Thread(
                target=_stop_when_unwanted, args=(process, unwanted, finished, stopped), name="byhand-client-watch"
            )
            with signals_blocked():
                watcher.start()
        try:
            stdout, stderr = process.communicate(stdin)
        finally:
            if unwanted is not None:
                set_event(finished)
                watcher.join()
    if stopped.is_set():
        raise CopyUnwanted(f"{args[0]} was stopped: the scratch copy is not needed")
    if process.returncode != 0:
        detail = (stderr or stdout).strip().splitlines()
        raise RehearsalError(f"could not {what}: {args[0]} said: {' / '.join(detail[-3:])}")
    return stdout


def _stop_when_unwanted(
    process: subprocess.Popen[str], unwanted: threading.Event, finished: threading.Event, stopped: threading.Event
) -> None:
    """Beside run_client's communicate(): kill the program once ``unwanted`` is set. (A
    communicate() with a timeout, retried, would stop writing the program's input.)"""
    while not finished.wait(UNWANTED_POLL):
        if unwanted.is_set():
            stopped.set()
            process.kill()
            return
