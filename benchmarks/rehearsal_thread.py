#!/usr/bin/env python
"""Does running the scratch copy's statements in a thread (rehearsing.Deferred) pay?

    python benchmarks/rehearsal_thread.py [--database-url URL] [--rounds 3] [--project DIR]

``manage.py byhand sql --manual-steps -o FILE`` of the generated project's whole plan,
on a fresh empty database each time, with the thread (whatever the vendor's default)
and without it (every statement run by the caller), interleaved, --rounds times after
one untimed warm-up of each. Both runbooks must be the same apart from the header.
Prints each time and the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from benchlib import BenchmarkError, Database, manage_env, run_timed, runbook_body, say
from run import DEFAULT_PROJECT

__all__ = ["main"]


def child(mode: str, argv: list[str]) -> None:
    """Run manage.py ``argv`` in this process, the thread on (``thread``) or off (``sync``)
    whatever the vendor's default (Vendor.rehearses_in_thread)."""
    from byhand.vendors.mysql import MySQL
    from byhand.vendors.postgresql import PostgreSQL
    from byhand.vendors.sqlite import SQLite

    for vendor in (MySQL, PostgreSQL, SQLite):
        vendor.rehearses_in_thread = mode == "thread"
    from django.core.management import execute_from_command_line

    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    execute_from_command_line(["manage.py", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/byhand_rehearsal_thread.sqlite3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    project = args.project.resolve()
    times: dict[str, list[float]] = {"thread": [], "sync": []}
    texts: dict[str, str] = {}
    for number in range(args.rounds + 1):  # round 0 warms up, untimed
        for mode in times:
            url = args.database_url if args.database_url.startswith("sqlite") else f"{args.database_url}_{mode}"
            database = Database.from_url(url)
            database.recreate()
            output = Path(f"/tmp/byhand_rehearsal_thread_{mode}.sql")
            command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
            command += ["byhand", "sql", "--manual-steps", "-o", str(output)]
            run = run_timed(command, cwd=project, env={**os.environ, **manage_env(url)})
            if not run.ok:
                raise BenchmarkError(f"byhand sql ({mode}) exited with {run.returncode}:\n{run.tail()}")
            texts[mode] = runbook_body(output)
            if number:
                times[mode].append(run.seconds)
            database.drop()
        if texts["thread"] != texts["sync"]:
            raise BenchmarkError("the two runbooks differ")
        if number:
            say(f"  round {number}/{args.rounds}: " + ", ".join(f"{m} {t[-1]:.2f} s" for m, t in times.items()))
    thread, inline = statistics.median(times["thread"]), statistics.median(times["sync"])
    print(
        f"{args.database_url.split(':')[0]}: byhand sql, medians of {args.rounds}: thread {thread:.2f} s, "
        f"without {inline:.2f} s, thread / without {thread / inline:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
