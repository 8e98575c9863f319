"""The ``byhand`` console script: the operating side, with no Django project needed.

Exit statuses (apply; the other commands use 0, 2 and 130; review exits 0 whatever the risk it finds):
  0  done (or nothing to do, or a dry run)
  1  failed part-way; every atomic migration is fully applied and recorded or not at all,
     and running the same runbook again resumes
  2  refused before any change: bad input, failed preflight, another apply running
  3  gave up waiting for locks (--max-attempts / --max-wait); the message says what of that
     migration is committed, and running the same runbook again resumes
  4  stopped before a manual step (RunPython) the operator has to run
  130  interrupted: Ctrl-C, SIGTERM, SIGHUP (the terminal or SSH session went away), or its
     standard output was closed (a pipe's reader gone); the open transaction is rolled back,
     the journal says interrupted, and running the same runbook again resumes
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from byhand import __version__
from byhand.console import (
    add_apply_arguments,
    add_journal_argument,
    add_size_arguments,
    apply_options,
    read_runbook,
    read_text,
    report_error,
    run_apply,
    silence,
    terminate_as_interrupt,
    write_atomically,
)
from byhand.exceptions import ByhandError, CommandInterrupted, ExitStatus, RunbookUnreadable
from byhand.operating.assessing import Thresholds
from byhand.operating.journal import operator
from byhand.operating.preflight import numbered_steps
from byhand.operating.review_report import format_review, review_html, review_json
from byhand.operating.reviewing import review_runbook
from byhand.operating.status import RunbookStatus, runbook_status
from byhand.runbook import Control, Runbook, sign_runbook
from byhand.vendors import get_target
from byhand.vendors.params import ConnectionParams, parse_database_url

__all__ = ["format_plan", "format_status", "main"]

_URL_HELP = (
    "postgres://user:pass@host:port/db, mysql://…, sqlite:///path (or the environment variable "
    "BYHAND_DATABASE_URL, which keeps the password out of 'ps'). MySQL/MariaDB: "
    "mysql://…/db?driver=pymysql (or =mysqlclient) chooses the driver; else BYHAND_MYSQL_DRIVER; else "
    "mysqlclient when installed, else PyMySQL"
)


def _parser() -> argparse.ArgumentParser:
    epilog = (__doc__ or "").split("\n\n", 1)[1]
    parser = argparse.ArgumentParser(
        prog="byhand",
        description="Run Django migrations by hand from a reviewed runbook (written by 'manage.py byhand sql'). "
        "Needs no Django project: only the runbook and a database URL.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"byhand {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
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
        "checksum it replaced in the header (apply journals it, and resumes where runs of the runbook it "
        "replaces stopped). A block's markers must still say what its SQL does (what it records, deletes, "
        "whether it is atomic, its manual steps): sign refuses them otherwise.",
    )
    sign.add_argument("runbook", type=Path, help="the runbook file (rewritten in place)")
    sign.add_argument(
        "--original",
        type=Path,
        metavar="FILE",
        help="the runbook as it was before the edit (its checksum must be the one the edit replaces): sign prints "
        "what changed against it",
    )
    apply = commands.add_parser(
        "apply",
        help="run a runbook against a database",
        description="Preflight, then run the runbook statement by statement with lock timeouts, retries and a journal.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_apply_arguments(apply)
    apply.add_argument("--database-url", help=_URL_HELP)
    status = commands.add_parser(
        "status",
        help="where a runbook stands on a database",
        description="Per migration: applied, pending or partial; and the run history. Read-only.",
    )
    status.add_argument("runbook", type=Path, help="the runbook file")
    status.add_argument("--database-url", help=_URL_HELP)
    add_journal_argument(status)
    status.add_argument("--json", action="store_true", help="the report as one JSON object")
    _add_review(commands)
    return parser


def _add_review(commands: Any) -> None:
    review = commands.add_parser(
        "review",
        help="how risky each statement is on a database, with its tables' live sizes",
        description="Per statement: its tables and their live size, the locks it takes and what they block, "
        "whether it rewrites a table or reads every row, a risk level with reasons, a safer form where there "
        "is one, Django's hazards, and squawk's rules (PostgreSQL, when squawk is installed). Read-only. "
        "Exit 0 when it could review, whatever the risk; 2 when it could not.",
    )
    review.add_argument("runbook", type=Path, help="the runbook file")
    review.add_argument("--database-url", help=_URL_HELP)
    add_journal_argument(review)
    add_size_arguments(review)
    review.add_argument("--json", action="store_true", help="the review as one JSON object (README: review --json)")
    review.add_argument("--html", type=Path, metavar="FILE", help="also write the review as one self-contained page")
    review.add_argument("--no-squawk", action="store_true", help="do not run squawk even where it is installed")


#: What a command other than apply leaves when it is interrupted (apply says it itself).
_INTERRUPTED = {
    "inspect": "it only reads: nothing was changed.",
    "status": "it only reads: nothing was changed.",
    "review": "it only reads: nothing was changed.",
    "sign": "the runbook is either re-signed whole or left as it was ('byhand inspect' shows any signature).",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    received: list[str] = []  # SIGINT/SIGTERM/SIGHUP, even if a driver turned it into another error
    try:
        if args.command == "apply":
            return run_apply(
                args.runbook, _database_url(args.database_url), apply_options(vars(args)), json_lines=args.json
            )
        with terminate_as_interrupt(received):
            return _command(args)
    except KeyboardInterrupt as exc:
        if args.command == "apply":  # apply says itself where it stopped; this one came before or after it
            raise
        return report_error(CommandInterrupted(args.command, reason=str(exc), then=_INTERRUPTED[args.command]))
    except ByhandError as exc:
        if received:
            return report_error(CommandInterrupted(args.command, reason=received[0], then=_INTERRUPTED[args.command]))
        return report_error(exc)
    except BrokenPipeError:  # inspect or status into a pipe whose reader is gone
        silence(sys.stdout)
        return ExitStatus.INTERRUPTED
    except Exception:
        if not received:
            raise
        # A driver that swallowed the KeyboardInterrupt (mysqlclient, mid-query) and failed after it.
        return report_error(CommandInterrupted(args.command, reason=received[0], then=_INTERRUPTED[args.command]))


def _command(args: argparse.Namespace) -> int:
    """inspect, sign, status or review."""
    if args.command == "inspect":
        print(format_plan(read_runbook(args.runbook)), end="")
        return ExitStatus.OK
    if args.command == "sign":
        return _sign(args.runbook, original=args.original)
    params = _database_url(args.database_url)
    if args.command == "review":
        return _review(read_runbook(args.runbook), params, args)
    return _status(read_runbook(args.runbook), params, args)


def _database_url(given: str | None) -> ConnectionParams:
    url = given or os.environ.get("BYHAND_DATABASE_URL")
    if not url:
        raise ByhandError("give --database-url URL, or set BYHAND_DATABASE_URL.")
    return parse_database_url(url)


def _sign(path: Path, *, original: Path | None) -> int:
    text = read_text(path)
    try:
        signed, was, now = sign_runbook(
            text, by=operator(), at=datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
    except ByhandError as exc:
        hint = (
            ' If you added lines to a statement, update the "lines" of its marker.'
            if "outside a step" in str(exc)
            else ""
        )
        raise RunbookUnreadable(path, f"{path}: {exc}{hint}") from None
    if was == now:
        print(f"{path}: the checksum matches already (sha256:{now}); nothing to sign.")
        return ExitStatus.OK
    if original is not None:
        print(_changes(original, was, text, path), end="")
    try:
        write_atomically(path, signed)
    except OSError as exc:
        raise RunbookUnreadable(path, f"cannot write {path}: {exc.strerror}.") from None
    print(f"{path}: re-signed by {operator()}: sha256:{now} (was sha256:{was}). apply journals the signature.")
    return ExitStatus.OK


def _changes(original: Path, was: str, edited: str, path: Path) -> str:
    """What the edit changed, as a unified diff of the runbook's body against ``original``,
    which must be the runbook the edit replaces."""
    before = read_runbook(original)
    if before.checksum() != was:
        raise RunbookUnreadable(
            original, f"{original} is not the runbook {path} replaces (its checksum is sha256:{before.checksum()})"
        )
    body = edited.rstrip("\n").rpartition("\n")[0] + "\n"
    lines = difflib.unified_diff(
        before.body().splitlines(keepends=True), body.splitlines(keepends=True), str(original), str(path)
    )
    return "".join(lines) or f"{path}: no change in the body against {original}.\n"


def _status(runbook: Runbook, params: ConnectionParams, args: argparse.Namespace) -> int:
    target = get_target(params)
    target.connect(application="byhand status")
    try:
        report = runbook_status(runbook, target, journal_table=args.journal_table)
    finally:
        target.close()
    if args.json:
        migrations = [vars(m) for m in report.migrations]
        runs = [vars(r) for r in report.runs]
        print(json.dumps({"migrations": migrations, "runs": runs, "lock_holder": report.lock_holder}, default=str))
    else:
        print(format_status(report, heading=f"{args.runbook} ({runbook.direction}) on {params.display()}:"), end="")
    return ExitStatus.OK


def _review(runbook: Runbook, params: ConnectionParams, args: argparse.Namespace) -> int:
    if args.html is not None and _is_same_file(args.html, args.runbook):
        raise ByhandError(
            f"--html {args.html} is the runbook {args.runbook}: writing the page would replace it; "
            "name another file. Nothing was written."
        )
    target = get_target(params)
    target.connect(application="byhand review")
    try:
        thresholds = Thresholds(big_rows=args.big_rows, big_bytes=args.big_bytes)
        review = review_runbook(
            runbook, target, thresholds=thresholds, journal_table=args.journal_table, squawk=not args.no_squawk
        )
    finally:
        target.close()
    title = f"byhand review of {args.runbook.name} on {params.display()}"
    if args.html is not None:
        try:
            write_atomically(args.html, review_html(review, title=title))
        except OSError as exc:
            raise ByhandError(f"cannot write {args.html}: {exc.strerror}; nothing else was written.") from None
    if args.json:
        print(json.dumps(review_json(review)))
    else:
        print(format_review(review, title=title), end="")
    return ExitStatus.OK


def _is_same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path, another path to it, a symbolic
    or a hard link (os.path.samefile where both exist, else their resolved paths)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def format_status(report: RunbookStatus, *, heading: str) -> str:
    """``status`` for a person: each migration's state, then the runs, newest first."""
    lines = [heading]
    for migration in report.migrations:
        line = f"  {migration.name:55} {migration.state:9}"
        if migration.state == "partial":
            line += f" {migration.done} of {migration.statements} statement(s) committed"
        if migration.failed:
            line += f"\n      failed at statement {migration.failed[0]}: {migration.failed[1]}"
        lines.append(line)
    lines.append("runs (newest first):" if report.runs else "no runs journaled yet")
    for run in report.runs:
        outcome = run.outcome
        if outcome == "running or crashed":
            outcome = f"running now ({report.lock_holder})" if report.lock_holder else "interrupted (no end journaled)"
        lines.append(f"  {run.run_id}  {run.started_at}  {run.operator:30} {outcome}")
    return "\n".join(lines) + "\n"


#: What a block that is not a migration does, for inspect.
_BLOCK_KINDS = {
    "setup": "creates django_migrations, as Django's recorder does",
    "replacements": "records squashed migrations whose replaced migrations are all applied",
}


def format_plan(runbook: Runbook) -> str:
    """A person's summary of a runbook: what it runs, in which order, and what needs a hand."""
    header = runbook.header
    lines = [
        f"byhand runbook, {runbook.direction}, checksum sha256:{runbook.checksum()} (verified)",
        f"  for {header['vendor']} {header['server_version']} (database alias '{header['database']}'), "
        f"Django {header['django']}, generated {header['generated_at']}",
        f"  against schema {header['against']}",
        f"  settings: {', '.join(f'{k}={v}' for k, v in header['settings'].items())}",
        *(
            ["  online: statements with a safe form are written in it (review names those left as Django wrote them)"]
            if header.get("online")
            else []
        ),
        f"{len(runbook.migrations)} migration(s):",
    ]
    for offset, signature in enumerate(header.get("signed", []), start=1):
        lines.insert(offset, f"  re-signed by {signature['by']} at {signature['at']} (was sha256:{signature['was']})")
    for block in runbook.blocks:
        name = block.migration or f"({block.kind})"  # as apply names it
        atomic = "atomic" if block.atomic else "NOT atomic"
        lines.append(f"  {name:50} {atomic:10} {len(numbered_steps(block)):3} statement(s)")
        if block.kind != "migration":
            lines.append(f"      {_BLOCK_KINDS[block.kind]}")
        forms = [step.online["form"] for step in block.steps if step.online and step.online["part"] == 1]
        if forms:
            begun = any(isinstance(item, Control) and item.sql == "BEGIN;" for item in block.items)
            how = "several transactions" if begun else "each statement commits on its own"
            runs = [(kind, len(list(same))) for kind, same in itertools.groupby(forms)]  # in order, repeats counted
            kinds = ", ".join(kind if count == 1 else f"{kind} x{count}" for kind, count in runs)
            lines.append(f"      online: {len(forms)} statement(s) in safe forms, {how} ({kinds})")
        rows = block.records or block.deletes
        verb = "records" if block.records else "deletes"
        if rows:
            lines.append(f"      {verb}: {', '.join(f'{a}.{n}' for a, n in rows)}")
        if block.requires:
            lines.append(f"      requires: {', '.join(block.requires)}")
        for step in block.manual_steps:
            lines.append(f"      MANUAL STEP (operation {step.op}): {step.callable}")
        for read in block.reads:
            lines.append(f"      checks first (operation {read.op}): {read.query} gives {json.dumps(read.rows)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
