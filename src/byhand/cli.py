"""The ``byhand`` console script: the operating side, with no Django project needed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from byhand import __version__
from byhand.exceptions import ByhandError
from byhand.runbook import Runbook, parse_runbook

__all__ = ["format_plan", "main"]

#: Exit statuses: 0 done, 1 failed, 2 bad input (unreadable or invalid runbook, bad arguments).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="byhand",
        description="Run Django migrations by hand from a reviewed runbook (written by 'manage.py byhand sql').",
    )
    parser.add_argument("--version", action="version", version=f"byhand {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    inspect = commands.add_parser(
        "inspect",
        help="check a runbook and print its plan",
        description="Parse a runbook, verify its checksum and print its plan. Needs no Django settings.",
    )
    inspect.add_argument("runbook", type=Path, help="the runbook file")
    args = parser.parse_args(argv)
    try:
        text = args.runbook.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"byhand: cannot read {args.runbook}: {exc.strerror}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        runbook = parse_runbook(text)
    except ByhandError as exc:
        print(f"byhand: {args.runbook}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_plan(runbook), end="")
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
