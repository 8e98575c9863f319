#!/usr/bin/env python
"""Copies under load on MariaDB: an application's latency while each operation's migration changes a big table.

    python benchmarks/mariadb_copy.py [--database-url URL] [--rows 2000000] [--rounds 2]
                                      [--read-rate 150] [--update-rate 50] [--threads 8]
                                      [--operations type_change,...] [--contenders migrate,...]
                                      [--online-variant OPTIONS]
                                      [--give-up-after 900] [--json-out FILE] [--keep]

MariaDB only (issue 20, item 4). The database named in the URL is created afresh,
benchmarks/mariacopy/ migrated to stock.0001 and its table filled with --rows rows (the
SEQUENCE engine). Each operation is a 0002 of its own from that same 0001: type_change
(AlterField IntegerField -> BigIntegerField), set_not_null (AlterField null=True -> False;
no NULLs), add_check (a CheckConstraint), add_index (AddIndex), add_unique (a
UniqueConstraint). ``manage.py byhand sql stock 0002 [--online]`` writes each operation's
two runbooks once, before the windows; the --online one marks each statement with its form
(``copy`` where the rehearsal found only a copy will do, which apply runs through
pt-online-schema-change; it was ``pt-online-schema-change`` before fe9bc33; ``algorithm``
where ALGORITHM=INSTANT/NOCOPY/INPLACE, LOCK=NONE is written in). For each operation and
contender:

    t = 0      the load starts, open loop on --threads autocommit connections: --read-rate
               primary-key SELECTs and --update-rate one-row UPDATEs by primary key (of a
               column no operation touches) per second; query k of a kind is due at
               t0 + k/rate and its latency counts from then; every failed query is kept;
    t = 1 s    the contender's migration starts;
    end        1 s after it has ended, or after --give-up-after seconds, when the benchmark
               kills it (and its statement in the server) and counts it as not done.

Contenders: ``migrate`` (``manage.py migrate stock 0002``), ``byhand plain`` and ``byhand
online`` (``byhand apply RUNBOOK --json``, apply's defaults otherwise), and, for each
--online-variant, the --online runbook applied with those options too (e.g.
``--online-variant "--pt-osc-sleep 0.1"``); --contenders picks some of the first three.
Between windows the schema goes back to 0001 by SQL (columns modified back, what was added
dropped, what a copy left dropped, 0002 unrecorded, journal emptied) and is checked against
the start; after each window, SHOW CREATE TABLE, the recorded migrations, triggers and stray
tables must equal what the operation's first successful contender (migrate) left.
Operations and contenders run interleaved, --rounds times; the report gives medians over the
rounds, the failed queries by error, the form of each statement of the --online runbooks and
whether pt-online-schema-change swapped its copy in, and the goal: with the online runbook,
no query over 100 ms and none failed, for every operation, in every round.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time

from benchlib import (
    BenchmarkError,
    Database,
    add_load_arguments,
    add_subset_argument,
    describe_context,
    parse_load_arguments,
    say,
    scratch,
)
from copy_stage import CONTENDERS, ENGINE, OPERATIONS, SWAPPED, Copies, online_contender
from mariadb_stage import Scenario
from online_load import measure, report, write_json
from online_stage import Outcome

from byhand.vendors.pt_osc import EngineSettings

__all__ = ["main"]

DEFAULT_URL = "mysql://root@127.0.0.1:3306/byhand_mariacopy"
GOAL_MS = 100.0
ALGORITHM = re.compile(r"ALGORITHM=\w+,? LOCK=\w+")


def forms_lines(forms: dict[str, list[str]], statements: dict[str, str], outcomes: list[Outcome]) -> list[str]:
    """Per operation: the forms of its --online runbook's statements, the algorithm clauses
    written in (``statements``: the runbook's SQL), and in how many windows of each online
    contender pt-online-schema-change said it swapped its copy in."""
    lines = []
    for operation, marked in forms.items():
        said = ", ".join(marked)
        if clauses := ALGORITHM.findall(statements[operation]):
            said += f" ({'; '.join(clauses)})"
        if ENGINE in marked:
            online = [o for o in outcomes if o.operation == operation and o.contender.startswith(online_contender(""))]
            for contender in dict.fromkeys(o.contender for o in online):
                mine = [o for o in online if o.contender == contender]
                swapped = sum(any(event.get("progress") == SWAPPED for event in o.events) for o in mine)
                said += f"; `{contender}`: {ENGINE} swapped its copy in, in {swapped} of {len(mine)} windows"
        lines.append(f"- {operation}: {said}")
    return lines


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="mysql://...; dropped and created afresh")
    add_load_arguments(parser, rows=2_000_000, rounds=2)
    add_subset_argument(parser, "--operations", OPERATIONS)
    add_subset_argument(parser, "--contenders", CONTENDERS)
    parser.add_argument(
        "--online-variant",
        action="append",
        default=[],
        metavar="OPTIONS",
        help='one more contender: the --online runbook applied with these options too (e.g. "--pt-osc-sleep 0.1")',
    )
    parser.add_argument(
        "--give-up-after", type=float, default=900.0, help="stop a migration running longer (default: %(default)s s)"
    )
    return parse_load_arguments(parser, argv, vendor="mysql")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    database = Database.from_url(args.database_url)
    scenario = Scenario(args.rows, args.read_rate, args.update_rate, args.threads, args.give_up_after)
    contenders = [*args.contenders, *(online_contender(options) for options in args.online_variant)]
    context = {"context": describe_context(), "server": database.server_version()}
    started = time.perf_counter()
    with scratch(database, keep=args.keep, prefix="byhand_mariacopy_") as workdir:
        copies = Copies(database, scenario, workdir, args.operations)
        try:
            say(f"creating {database.name}, migrating to 0001, loading {args.rows:,} rows, writing the runbooks ...")
            copies.prepare()
            say(f"  ready in {time.perf_counter() - started:.1f} s")
            outcomes = measure(copies, args.operations, contenders, rounds=args.rounds)
            statements = {operation: copies.statements(operation, "online") for operation in args.operations}
        except BenchmarkError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    print(f"## Copies under load (MariaDB), {args.rounds} round(s)\n\n{context['context']}\n")
    print(
        f"{context['server']}; {ENGINE} {shutil.which(ENGINE) or '(not found)'}. {args.rows:,} rows; "
        f"{args.read_rate:g} reads/s + {args.update_rate:g} updates/s on {args.threads} connections, open loop; "
        "byhand apply with its defaults (--lock-timeout 100ms, --max-attempts 20, --max-wait 10m; "
        f"--pt-osc-chunk-size {EngineSettings.chunk_size}, --pt-osc-sleep {EngineSettings.sleep:g}) unless the "
        "contender says otherwise; migrate with the "
        "server's lock_wait_timeout. Medians over the rounds that succeeded; latency from each query's due time; "
        f"migration = the whole process, start-up included. Wall time {time.perf_counter() - started:.0f} s; "
        f"load average (1 min) at the windows' ends {min(copies.loads):.2f} to {max(copies.loads):.2f}, "
        f"at the end {os.getloadavg()[0]:.2f}.\n"
    )
    print(report(outcomes, args.operations, contenders, args.rounds, goal_ms=GOAL_MS), end="")
    print("\nThe --online runbooks' forms:\n")
    print("\n".join(forms_lines(copies.forms, statements, outcomes)))
    for operation, text in statements.items():
        print(f"\n`{operation}`, the online runbook's statements:\n\n```sql\n{text}\n```")
    if args.json_out:
        write_json(args.json_out, outcomes, scenario, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
