"""What both front ends share (the console script and ``manage.py byhand``): the apply
options and their argument types, the event printer, errors as one message and an exit
status, SIGTERM as Ctrl-C, files written whole or not at all, runbooks read."""

from __future__ import annotations

import argparse
import errno
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
from byhand.operating.assessing import Thresholds, parse_size
from byhand.operating.journal import DEFAULT_TABLE
from byhand.runbook import Runbook, parse_runbook
from byhand.vendors import get_target
from byhand.vendors.params import ConnectionParams
from byhand.vendors.pt_osc import EngineSettings

__all__ = [
    "MAX_RUNBOOK_BYTES",
    "EventPrinter",
    "add_apply_arguments",
    "add_journal_argument",
    "add_size_arguments",
    "apply_options",
    "parse_duration",
    "positive",
    "read_runbook",
    "read_text",
    "report_error",
    "run_apply",
    "silence",
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
    _add_lock_arguments(parser.add_argument_group("locks and retries"))
    _add_engine_arguments(parser)
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
        "--allow-session-pooler",
        action="store_true",
        help="go on through a connection pooler (PgBouncer) that keeps one server session per client connection "
        "(pool_mode = session); by default apply refuses a pooler, which in transaction mode would share its "
        "session with other clients",
    )
    parser.add_argument(
        "--run-lock-wait",
        type=parse_duration,
        default=timedelta(seconds=5),
        help="how long to wait for another apply's run lock before refusing (default 5s)",
    )
    risk = parser.add_argument_group("risk gate (see 'byhand review')")
    risk.add_argument(
        "--refuse-risk",
        choices=["medium", "high"],
        help="refuse before any change (exit 2) when a statement that would run is at this risk or above, "
        "judged as 'byhand review' judges it with the table sizes read now (default: no gate)",
    )
    add_size_arguments(risk)
    parser.add_argument("--json", action="store_true", help="one JSON event per line on stdout, for automation")


def _size(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size <= 0:  # as --big-rows: every table, the empty ones too, would be big
        raise argparse.ArgumentTypeError(f"{text!r} is not a size above 0")
    return size


def add_size_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """When a table counts as big, for review and apply's risk gate."""
    default = Thresholds()
    group.add_argument(
        "--big-rows",
        type=positive,
        default=default.big_rows,
        metavar="N",
        help=f"a table of at least N rows (the server's estimate) is big (default {default.big_rows:,})",
    )
    group.add_argument(
        "--big-bytes",
        type=_size,
        default=default.big_bytes,
        metavar="SIZE",
        help="a table of at least SIZE (table, indexes, TOAST; e.g. 100MB, 2GB, 512kB; units of 1024) is big "
        "(default 100MB)",
    )


def _add_lock_arguments(locks: argparse._ArgumentGroup) -> None:
    locks.add_argument(
        "--lock-timeout",
        type=parse_duration,
        default=DEFAULT_LOCK_TIMEOUT,
        help="longest wait for a lock per attempt; the application's queries queue behind a waiting ALTER for "
        "at most this long (default 100ms; MariaDB rounds down to whole seconds, 0 = NOWAIT, but a statement "
        "that reads every row or rebuilds the table waits at least 1s, within --max-wait: with NOWAIT its last "
        "lock threw the finished work away)",
    )
    locks.add_argument(
        "--statement-timeout", type=parse_duration, help="abort statements running longer (default: none)"
    )
    locks.add_argument(
        "--concurrent-lock-timeout",
        type=parse_duration,
        help="lock timeout for CREATE/DROP INDEX CONCURRENTLY, whose waiting for older transactions (old "
        "snapshots) blocks no query (default: --max-wait, so one attempt may wait that long; 0 = no limit); "
        "--statement-timeout applies to them too. The live progress and the give-up message name the "
        "sessions they wait for",
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
    locks.add_argument(
        "--full-blocker-queries",
        action="store_true",
        help="print and journal blocking sessions' queries as they are; by default their literals are replaced "
        "by ? (another session's query may hold a password or an API key)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 60")
    return value


_LOAD = re.compile(r"^\w+[=:]\d+(?:,\w+[=:]\d+)*$")


def _load(text: str) -> str:
    if not _LOAD.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not VAR=N[,VAR=N…] (a status variable and a number)")
    return text


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    default = EngineSettings()
    engine = parser.add_argument_group(
        "pt-online-schema-change (MySQL/MariaDB: what an online runbook's statements that need a copy of the "
        "table run through; it must be on PATH)"
    )
    engine.add_argument(
        "--pt-osc-chunk-size",
        type=positive,
        default=default.chunk_size,
        metavar="ROWS",
        help=f"rows copied per chunk, a fixed number (default {default.chunk_size}): its own default, chunks "
        "sized to take 0.5s, held the application's updates past 100ms behind its triggers",
    )
    engine.add_argument(
        "--pt-osc-sleep",
        type=_seconds,
        default=default.sleep,
        metavar="SECONDS",
        help=f"pause after each chunk (default {default.sleep:g}); the copy takes longer, the application waits less",
    )
    engine.add_argument(
        "--pt-osc-max-load",
        type=_load,
        default=default.max_load,
        metavar="VAR=N",
        help=f"pause the copy while a status variable is above N (default {default.max_load})",
    )
    engine.add_argument(
        "--pt-osc-critical-load",
        type=_load,
        default=default.critical_load,
        metavar="VAR=N",
        help=f"give up the copy (dropping what it made) when a status variable is above N "
        f"(default {default.critical_load}); run the runbook again later",
    )


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
        full_blocker_queries=values["full_blocker_queries"],
        allow_session_pooler=values["allow_session_pooler"],
        refuse_risk=values.get("refuse_risk"),
        thresholds=Thresholds(
            big_rows=values.get("big_rows") or Thresholds.big_rows,
            big_bytes=values.get("big_bytes") or Thresholds.big_bytes,
        ),
        engine=EngineSettings(
            chunk_size=values.get("pt_osc_chunk_size") or EngineSettings.chunk_size,
            sleep=values.get("pt_osc_sleep", EngineSettings.sleep),
            max_load=values.get("pt_osc_max_load") or EngineSettings.max_load,
            critical_load=values.get("pt_osc_critical_load") or EngineSettings.critical_load,
        ),
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
        self.closed = False  # the stream could not be written any more
        self.interrupted = False  # and the run was told so

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
        """Write, or, once the stream is closed (a pipe's reader gone, the terminal hung up),
        interrupt the run: in the main thread at once, as Ctrl-C would; a watcher thread's
        event is dropped and the next one of the main thread interrupts. After that the run
        finishes its interruption (rollback, journal) silently."""
        if self.closed:
            self._interrupt_once()
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _CLOSED_ERRNOS:
                raise
            self.closed = True
            silence(self.stream)
            self._interrupt_once()

    def _interrupt_once(self) -> None:
        if not self.interrupted and threading.current_thread() is threading.main_thread():
            self.interrupted = True
            raise KeyboardInterrupt("its standard output was closed")


#: A stream whose reader is gone (EPIPE), or a terminal that hung up (EIO).
_CLOSED_ERRNOS = frozenset({errno.EPIPE, errno.EIO, errno.EBADF})


def silence(stream: TextIO) -> None:
    """Point a closed stream's file descriptor at /dev/null, so that nothing written later
    (the interpreter's flush at exit) fails again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def report_error(exc: ByhandError, *, json_lines: bool = False) -> ExitStatus:
    """Say what went wrong in one message (and one JSON event with ``json_lines``); the
    exit status the error carries. A closed output is not an error of its own."""
    status = exc.exit_status
    lines = [(sys.stderr, f"byhand: {exc}")]
    if json_lines:
        event = {"event": "error", "kind": type(exc).__name__, "message": str(exc), "exit": int(status)}
        lines.insert(0, (sys.stdout, json.dumps(event)))
    for stream, line in lines:
        try:
            print(line, file=stream, flush=True)
        except (OSError, ValueError):
            silence(stream)
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


#: The largest runbook byhand reads. The runbook of 534 migrations is 1 MB; a runbook is
#: read whole, and parsing takes about seven times its size in memory.
MAX_RUNBOOK_BYTES = 64 * 1024 * 1024


def read_text(path: Path) -> str:
    """A runbook's text: UTF-8, at most MAX_RUNBOOK_BYTES; RunbookUnreadable otherwise."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_RUNBOOK_BYTES + 1)
    except OSError as exc:
        raise RunbookUnreadable(path, f"cannot read {path}: {exc.strerror}.") from None
    if len(data) > MAX_RUNBOOK_BYTES:
        limit = MAX_RUNBOOK_BYTES // (1024 * 1024)
        raise RunbookUnreadable(
            path, f"{path}: larger than {limit} MB, the most byhand reads as a runbook; split the plan into runbooks"
        )
    if b"\0" in data:
        raise RunbookUnreadable(path, f"{path}: not UTF-8 text (a binary file: it holds NUL bytes), not a runbook")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunbookUnreadable(
            path, f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}), not a runbook"
        ) from None


def read_runbook(path: Path, *, verify_checksum: bool = True) -> Runbook:
    """The runbook in ``path``; RunbookUnreadable when it cannot be read or is not one."""
    text = read_text(path)
    try:
        return parse_runbook(text, verify_checksum=verify_checksum)
    except ByhandError as exc:
        raise RunbookUnreadable(path, f"{path}: {exc}") from None


@contextmanager
def terminate_as_interrupt(received: list[str] | None = None) -> Iterator[None]:
    """SIGTERM, and SIGHUP (the terminal or SSH session went away), raise KeyboardInterrupt
    for a while, as Ctrl-C does, so that every ``finally`` runs (a scratch copy dropped, a
    transaction rolled back, the journal told). Each signal's name ("Ctrl-C" for SIGINT) is
    added to ``received``: a driver or Django may swallow the KeyboardInterrupt and fail
    otherwise (psycopg, mid-query, leaves the connection busy, and Django's clean-up then
    raises a DatabaseError in its place), and the caller still owes the operator
    "interrupted". SIGINT is taken over only where Python's own handler has it (a
    background job that starts with it ignored keeps ignoring it)."""

    def interrupt(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            if received is not None:
                received.append("Ctrl-C")
            raise KeyboardInterrupt  # as Python's own handler: no message
        name = signal.Signals(signum).name
        if received is not None:
            received.append(name)
        raise KeyboardInterrupt(name)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    numbers = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        numbers.append(signal.SIGINT)
    previous = {number: signal.signal(number, interrupt) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, then a rename. A file
    replaced keeps its permissions; a new one gets the umask's. A symbolic link is
    followed (the file it names is replaced, the link stays); anything that exists and is
    not a regular file (a device such as /dev/full, a FIFO) is refused: the rename would
    replace it with a file (OSError)."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "it is not a regular file (write to standard output instead)")
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
