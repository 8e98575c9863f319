"""The ``byhand`` console script: the operating side, with no Django project needed.

Exit statuses (apply; the other commands use 0 and 2):
  0  done (or nothing to do, or a dry run)
  1  failed part-way; every atomic migration is fully applied and recorded or not at all,
     and running the same runbook again resumes
  2  refused before any change: bad input, failed preflight, another apply running
  3  gave up waiting for locks (--max-attempts / --max-wait); that migration untouched
  4  stopped before a manual step (RunPython) the operator has to run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from byhand import __version__
from byhand.applying import DEFAULT_LOCK_TIMEOUT, ApplyOptions, apply_runbook, connect
from byhand.events import Event, describe, to_json
from byhand.exceptions import ApplyError, ByhandError, GaveUpOnLocks, ManualStepPending
from byhand.journal import DEFAULT_TABLE, operator
from byhand.runbook import Runbook, parse_runbook, sign_runbook
from byhand.status import runbook_status
from byhand.vendors import get_target
from byhand.vendors.target import ConnectionParams, parse_database_url

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_GAVE_UP",
    "EXIT_MANUAL_STEP",
    "EXIT_OK",
    "EventPrinter",
    "add_apply_arguments",
    "format_plan",
    "main",
    "parse_duration",
    "run_apply",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_GAVE_UP, EXIT_MANUAL_STEP = 0, 1, 2, 3, 4

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> timedelta:
    """'100ms', '2s', '1.5m', '1h'; a bare number is seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (examples: 100ms, 2s, 5m)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(seconds=value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit])


def _positive(text: str) -> int:
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
        "--max-attempts", type=_positive, default=20, help="attempts per statement or transaction (default 20)"
    )
    locks.add_argument(
        "--max-wait",
        type=parse_duration,
        default=timedelta(minutes=10),
        help="give up on a lock after this long (default 10m)",
    )
    locks.add_argument(
        "--cancel-blockers-after",
        type=_positive,
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
    parser.add_argument(
        "--journal-table", default=DEFAULT_TABLE, help=f"the journal table's name (default {DEFAULT_TABLE})"
    )
    parser.add_argument(
        "--run-lock-wait",
        type=parse_duration,
        default=timedelta(seconds=5),
        help="how long to wait for another apply's run lock before refusing (default 5s)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON event per line on stdout, for automation")


def _options(args: argparse.Namespace) -> ApplyOptions:
    return ApplyOptions(
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        concurrent_lock_timeout=args.concurrent_lock_timeout,
        max_attempts=args.max_attempts,
        max_wait=args.max_wait,
        cancel_blockers_after=args.cancel_blockers_after,
        terminate_idle_after=args.terminate_idle_after,
        manual_steps_done=frozenset(args.manual_step_done),
        skip_manual_steps=args.skip_manual_steps,
        journal_table=args.journal_table,
        run_lock_wait=args.run_lock_wait,
        dry_run=args.dry_run,
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
                self._write(
                    "\r\033[K" + describe(event).strip()[: os.get_terminal_size(self.stream.fileno()).columns - 1]
                )
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


def run_apply(runbook_path: Path, params: ConnectionParams, args: argparse.Namespace) -> int:
    """``apply`` for both front ends: read, connect, apply, turn errors into exit statuses."""
    runbook = _read(runbook_path)
    if isinstance(runbook, int):
        return runbook
    printer = EventPrinter(sys.stdout, json_lines=args.json)
    target = get_target(params)
    try:
        with _sigterm_as_interrupt():
            connect(target)
            try:
                apply_runbook(runbook, target, options=_options(args), on_event=printer)
            finally:
                target.close()
    except ByhandError as exc:
        return _fail(exc, json_lines=args.json)
    return EXIT_OK


def _fail(exc: ByhandError, *, json_lines: bool) -> int:
    if isinstance(exc, GaveUpOnLocks):
        status = EXIT_GAVE_UP
    elif isinstance(exc, ManualStepPending):
        status = EXIT_MANUAL_STEP
    elif isinstance(exc, ApplyError):
        status = EXIT_FAILED
    else:
        status = EXIT_BAD_INPUT
    if json_lines:
        print(json.dumps({"event": "error", "kind": type(exc).__name__, "message": str(exc), "exit": status}))
    print(f"byhand: {exc}", file=sys.stderr)
    return status


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _read(path: Path, *, verify_checksum: bool = True) -> Runbook | int:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"byhand: cannot read {path}: {exc.strerror}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return parse_runbook(text, verify_checksum=verify_checksum)
    except ByhandError as exc:
        print(f"byhand: {path}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _database_url(args: argparse.Namespace) -> ConnectionParams | int:
    url = args.database_url or os.environ.get("BYHAND_DATABASE_URL")
    if not url:
        print("byhand: give --database-url URL, or set BYHAND_DATABASE_URL.", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return parse_database_url(url)
    except ByhandError as exc:
        print(f"byhand: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="byhand",
        description="Run Django migrations by hand from a reviewed runbook (written by 'manage.py byhand sql'). "
        "Needs no Django project: only the runbook and a database URL.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"byhand {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    url_help = (
        "postgres://user:pass@host:port/db, mysql://…, sqlite:///path (or the environment variable "
        "BYHAND_DATABASE_URL, which keeps the password out of 'ps')"
    )
    inspect = commands.add_parser(
        "inspect",
        help="check a runbook and print its plan",
        description="Parse a runbook, verify its checksum and print its plan.",
    )
    inspect.add_argument("runbook", type=Path, help="the runbook file")
    sign = commands.add_parser(
        "sign",
        help="re-sign a runbook after reviewing an edit",
        description="Accept a reviewed edit of a runbook: write a new checksum and keep who signed, when, and the "
        "checksum it replaced in the header (apply journals it).",
    )
    sign.add_argument("runbook", type=Path, help="the runbook file (rewritten in place)")
    apply = commands.add_parser(
        "apply",
        help="run a runbook against a database",
        description="Preflight, then run the runbook statement by statement with lock timeouts, retries and a journal.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_apply_arguments(apply)
    apply.add_argument("--database-url", help=url_help)
    status = commands.add_parser(
        "status",
        help="where a runbook stands on a database",
        description="Per migration: applied, pending or partial; and the run history. Read-only.",
    )
    status.add_argument("runbook", type=Path, help="the runbook file")
    status.add_argument("--database-url", help=url_help)
    status.add_argument("--journal-table", default=DEFAULT_TABLE)
    status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "inspect":
        runbook = _read(args.runbook)
        if isinstance(runbook, int):
            return runbook
        print(format_plan(runbook), end="")
        return EXIT_OK
    if args.command == "sign":
        return _sign(args.runbook)
    params = _database_url(args)
    if isinstance(params, int):
        return params
    if args.command == "apply":
        return run_apply(args.runbook, params, args)
    return _status(args, params)


def _sign(path: Path) -> int:
    try:
        text = path.read_text(encoding="utf-8")
        signed, was, now = sign_runbook(
            text, by=operator(), at=datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
    except OSError as exc:
        print(f"byhand: cannot read {path}: {exc.strerror}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ByhandError as exc:
        hint = (
            ' If you added lines to a statement, update the "lines" of its marker.'
            if "outside a step" in str(exc)
            else ""
        )
        print(f"byhand: {path}: {exc}{hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if was == now:
        print(f"{path}: the checksum matches already (sha256:{now}); nothing to sign.")
        return EXIT_OK
    temporary = path.with_name(path.name + ".signing")
    try:
        temporary.write_text(signed, encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        print(f"byhand: cannot write {path}: {exc.strerror}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{path}: re-signed by {operator()}: sha256:{now} (was sha256:{was}). apply journals the signature.")
    return EXIT_OK


def _status(args: argparse.Namespace, params: ConnectionParams) -> int:
    runbook = _read(args.runbook)
    if isinstance(runbook, int):
        return runbook
    target = get_target(params)
    try:
        connect(target, application="byhand status")
        try:
            report = runbook_status(runbook, target, journal_table=args.journal_table)
        finally:
            target.close()
    except ByhandError as exc:
        print(f"byhand: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(
            json.dumps(
                {
                    "migrations": [vars(m) for m in report.migrations],
                    "runs": [vars(r) for r in report.runs],
                    "lock_holder": report.lock_holder,
                },
                default=str,
            )
        )
        return EXIT_OK
    print(f"{args.runbook} ({runbook.direction}) on {params.display()}:")
    for migration in report.migrations:
        line = f"  {migration.name:55} {migration.state:9}"
        if migration.state == "partial":
            line += f" {migration.done} of {migration.statements} statement(s) committed"
        if migration.failed:
            line += f"\n      failed at statement {migration.failed[0]}: {migration.failed[1]}"
        print(line)
    print("runs (newest first):" if report.runs else "no runs journaled yet")
    for run in report.runs:
        outcome = run.outcome
        if outcome == "running or crashed":
            outcome = f"running now ({report.lock_holder})" if report.lock_holder else "interrupted (no end journaled)"
        print(f"  {run.run_id}  {run.started_at}  {run.operator:30} {outcome}")
    return EXIT_OK


def format_plan(runbook: Runbook) -> str:
    """A person's summary of a runbook: what it runs, in which order, and what needs a hand."""
    header = runbook.header
    lines = [
        f"byhand runbook, {runbook.direction}, checksum sha256:{runbook.checksum()} (verified)",
        f"  for {header['vendor']} {header['server_version']} (database alias '{header['database']}'), "
        f"Django {header['django']}, generated {header['generated_at']}",
        f"  against schema {header['against']}",
        f"  settings: {', '.join(f'{k}={v}' for k, v in header['settings'].items())}",
        f"{len(runbook.migrations)} migration(s):",
    ]
    for offset, signature in enumerate(header.get("signed", []), start=1):
        lines.insert(offset, f"  re-signed by {signature['by']} at {signature['at']} (was sha256:{signature['was']})")
    for block in runbook.blocks:
        steps = block.steps
        sql = [s for s in steps if s.kind in ("schema", "setup")]
        name = (
            block.migration or {"setup": "(create django_migrations)", "replacements": "(record squashes)"}[block.kind]
        )
        atomic = "atomic" if block.atomic else "NOT atomic"
        lines.append(f"  {name:50} {atomic:10} {len(sql):3} statement(s)")
        rows = block.records or block.deletes
        verb = "records" if block.records else "deletes"
        if rows:
            lines.append(f"      {verb}: {', '.join(f'{a}.{n}' for a, n in rows)}")
        if block.requires:
            lines.append(f"      requires: {', '.join(block.requires)}")
        for step in block.manual_steps:
            lines.append(f"      MANUAL STEP (operation {step.op}): {step.callable}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
