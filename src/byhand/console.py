"""What both front ends share (the console script and ``manage.py byhand``): the apply
options and their argument types, the event printer, errors as one message and an exit
status, SIGTERM as Ctrl-C, files written whole or not at all, runbooks read."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from byhand.events import Event, describe, to_json
from byhand.exceptions import ByhandError, ExitStatus, RunbookUnreadable
from byhand.operating.applying import DEFAULT_LOCK_TIMEOUT, ApplyOptions, apply_runbook
from byhand.operating.journal import DEFAULT_TABLE
from byhand.runbook import Runbook, parse_runbook
from byhand.vendors import get_target
from byhand.vendors.params import ConnectionParams

__all__ = [
    "EventPrinter",
    "add_apply_arguments",
    "add_journal_argument",
    "apply_options",
    "parse_duration",
    "positive",
    "read_runbook",
    "report_error",
    "run_apply",
    "terminate_as_interrupt",
    "write_atomically",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> timedelta:
    """'100ms', '2s', '1.5m', '1h'; a bare number is seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (examples: 100ms, 2s, 5m)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(seconds=value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit])


def positive(text: str) -> int:
    """A whole number ≥ 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ≥ 1")
    return int(text)


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``apply``, shared by the console script and ``manage.py byhand apply``."""
    parser.add_argument("runbook", type=Path, help="the runbook file written by 'manage.py byhand sql'")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the preflight verdict and what would run; change nothing"
    )
    locks = parser.add_argument_group("locks and retries")
    locks.add_argument(
        "--lock-timeout",
        type=parse_duration,
        default=DEFAULT_LOCK_TIMEOUT,
        help="longest wait for a lock per attempt; the application's queries queue behind a waiting ALTER for "
        "at most this long (default 100ms; MariaDB rounds down to whole seconds, 0 = NOWAIT)",
    )
    locks.add_argument(
        "--statement-timeout", type=parse_duration, help="abort statements running longer (default: none)"
    )
    locks.add_argument(
        "--concurrent-lock-timeout",
        type=parse_duration,
        default=timedelta(0),
        help="lock timeout for CREATE/DROP INDEX CONCURRENTLY, whose waiting for older transactions blocks no "
        "query (default 0: no limit; the live progress shows what it waits for)",
    )
    locks.add_argument(
        "--max-attempts", type=positive, default=20, help="attempts per statement or transaction (default 20)"
    )
    locks.add_argument(
        "--max-wait",
        type=parse_duration,
        default=timedelta(minutes=10),
        help="give up on a lock after this long (default 10m)",
    )
    locks.add_argument(
        "--cancel-blockers-after",
        type=positive,
        metavar="N",
        help="from attempt N on, cancel blocking queries and terminate sessions idle in transaction longer than "
        "--terminate-idle-after (off by default; every action is printed and journaled)",
    )
    locks.add_argument(
        "--terminate-idle-after", type=parse_duration, default=timedelta(seconds=10), help="(default 10s)"
    )
    manual = parser.add_argument_group("manual steps (RunPython)")
    manual.add_argument(
        "--manual-step-done",
        action="append",
        default=[],
        metavar="APP.MIGRATION:N",
        help="the operator ran manual step N of that migration: go past it (repeatable; journaled)",
    )
    manual.add_argument(
        "--skip-manual-steps", action="store_true", help="go past every manual step without running it (journaled)"
    )
    add_journal_argument(parser)
    parser.add_argument(
        "--run-lock-wait",
        type=parse_duration,
        default=timedelta(seconds=5),
        help="how long to wait for another apply's run lock before refusing (default 5s)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON event per line on stdout, for automation")


def add_journal_argument(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    parser.add_argument(
        "--journal-table", default=DEFAULT_TABLE, help=help or f"the journal table's name (default {DEFAULT_TABLE})"
    )


def apply_options(values: Mapping[str, Any]) -> ApplyOptions:
    """ApplyOptions from parsed arguments (an argparse Namespace's vars, or Django's options)."""
    return ApplyOptions(
        lock_timeout=values["lock_timeout"],
        statement_timeout=values["statement_timeout"],
        concurrent_lock_timeout=values["concurrent_lock_timeout"],
        max_attempts=values["max_attempts"],
        max_wait=values["max_wait"],
        cancel_blockers_after=values["cancel_blockers_after"],
        terminate_idle_after=values["terminate_idle_after"],
        manual_steps_done=frozenset(values["manual_step_done"]),
        skip_manual_steps=values["skip_manual_steps"],
        journal_table=values["journal_table"],
        run_lock_wait=values["run_lock_wait"],
        dry_run=values["dry_run"],
    )


class EventPrinter:
    """Events on a terminal (a live status line), as plain log lines, or as JSON lines."""

    _LIVE = frozenset({"statement-started", "statement-done", "waiting"})

    def __init__(self, stream: TextIO, *, json_lines: bool) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.live = stream.isatty() and not json_lines
        self.lock = threading.Lock()
        self.status = False
        self.logged_wait = 0

    def __call__(self, event: Event) -> None:
        with self.lock:
            if self.json_lines:
                self._write(to_json(event) + "\n")
            elif self.live and event.name in self._LIVE:
                width = os.get_terminal_size(self.stream.fileno()).columns - 1
                self._write("\r\033[K" + describe(event).strip()[:width])
                self.status = True
            elif event.name == "waiting":
                # Plain logs: one line per 10 s of waiting, not one per second.
                if int(event.data["elapsed"]) // 10 > self.logged_wait:
                    self.logged_wait = int(event.data["elapsed"]) // 10
                    self._write(describe(event) + "\n")
            elif event.name == "statement-started":
                self.logged_wait = 0  # plain logs: the done line says what ran
                if event.data["attempt"] > 1:
                    self._write(describe(event) + "\n")
            else:
                self._write(("\r\033[K" if self.status else "") + describe(event) + "\n")
                self.status = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def report_error(exc: ByhandError, *, json_lines: bool = False) -> ExitStatus:
    """Say what went wrong in one message (and one JSON event with ``json_lines``); the
    exit status the error carries."""
    status = exc.exit_status
    if json_lines:
        print(json.dumps({"event": "error", "kind": type(exc).__name__, "message": str(exc), "exit": int(status)}))
    print(f"byhand: {exc}", file=sys.stderr)
    return status


def run_apply(path: Path, params: ConnectionParams, options: ApplyOptions, *, json_lines: bool) -> ExitStatus:
    """``apply`` for both front ends: read, connect, apply; errors become one message and
    their exit status."""
    printer = EventPrinter(sys.stdout, json_lines=json_lines)
    try:
        runbook = read_runbook(path)
        target = get_target(params)
        with terminate_as_interrupt():
            target.connect()
            try:
                apply_runbook(runbook, target, options=options, on_event=printer)
            finally:
                target.close()
    except ByhandError as exc:
        return report_error(exc, json_lines=json_lines)
    return ExitStatus.OK


def read_runbook(path: Path, *, verify_checksum: bool = True) -> Runbook:
    """The runbook in ``path``; RunbookUnreadable when it cannot be read or is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookUnreadable(path, f"cannot read {path}: {exc.strerror}.") from None
    try:
        return parse_runbook(text, verify_checksum=verify_checksum)
    except ByhandError as exc:
        raise RunbookUnreadable(path, f"{path}: {exc}") from None


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt for a while, as Ctrl-C does, so that every
    ``finally`` runs (a scratch copy dropped, a transaction rolled back, the journal told)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, then a rename. A file
    replaced keeps its permissions; a new one gets the umask's."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            if path.exists():
                shutil.copymode(path, temporary)
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
