#!/usr/bin/env python
"""Online forms under load: an application's latency while each operation's migration runs on a big table.

    python benchmarks/online_load.py [--database-url URL] [--rows 5000000] [--rounds 2]
                                     [--read-rate 150] [--update-rate 50] [--threads 8]
                                     [--operations add_index,...] [--zero-downtime-path DIR] [--json-out FILE]

PostgreSQL only. The database named in the URL is created afresh, the project in
benchmarks/onlineload/ is migrated to ledger.0001, and its table of entries filled with
--rows rows (and 1,000 accounts for the foreign key). Each operation is a 0002 of its own
from that same 0001: add_index (AddIndex), add_unique (a UniqueConstraint), add_fk
(AlterField from ForeignKey(db_constraint=False)), set_not_null (AlterField null=True ->
False; no NULLs), add_check (a CheckConstraint). For each operation and contender:

    t = 0      the load starts, open loop on --threads autocommit connections: --read-rate
               primary-key SELECTs and --update-rate one-row UPDATEs by primary key (of a
               column no migration touches) per second; query k of a kind is due at
               t0 + k/rate and its latency counts from then; every failed query is kept;
    t = 1 s    the contender's migration starts;
    end        1 s after it has ended.

Contenders: ``migrate`` (``manage.py migrate ledger 0002``), ``byhand plain`` and
``byhand online`` (``byhand apply RUNBOOK --json``, apply's defaults otherwise, of the
runbook ``manage.py byhand sql ledger 0002 [--online]`` wrote before the window; the
online runbook must hold its safe forms), and ``zero-downtime`` (``manage.py migrate`` with
django-pg-zero-downtime-migrations' ENGINE and its default settings, imported from
--zero-downtime-path; skipped without it). Between windows the schema goes back to 0001
by direct SQL, checked, then CHECKPOINT, outside the window. Operations and contenders run
interleaved, --rounds times; the report gives medians over the rounds and checks the goal:
with the online runbook, no query slower than 150 ms and none failed, in every round.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from benchlib import (
    BenchmarkError,
    Database,
    add_load_arguments,
    add_subset_argument,
    describe_context,
    markdown_table,
    parse_load_arguments,
    say,
    scratch,
)
from online_stage import CONTENDERS, OPERATIONS, Outcome, Scenario, Stage

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["main"]

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/byhand_onlineload"
GOAL_MS = 150.0


class Windows(Protocol):
    """A benchmark's database side: one window of an operation's migration by a contender, and the reset."""

    def run(self, operation: str, contender: str, index: int) -> Outcome: ...
    def reset(self) -> None: ...


def measure(stage: Windows, operations: list[str], contenders: list[str], *, rounds: int) -> list[Outcome]:
    """Every operation with every contender, ``rounds`` times, interleaved."""
    outcomes = []
    for index in range(1, rounds + 1):
        for operation in operations:
            for contender in contenders:
                outcome = stage.run(operation, contender, index)
                outcomes.append(outcome)
                say(f"  round {index}/{rounds} {operation:12} {contender:13} {_progress(outcome)}")
    stage.reset()
    return outcomes


def _progress(outcome: Outcome) -> str:
    s = outcome.summary()
    text = (
        f"max {s['max_ms']:8.1f} ms (update {s['max_update_ms']:8.1f}), {s['over_100ms']:4} > 100 ms, "
        f"{s['queries']} queries, migration {s['migration_s']:.2f} s"
    )
    if outcome.failures:
        text += f" ({len(outcome.failures)} failed: {outcome.failures[0].error.splitlines()[0]})"
    return text + (f"; FAILED: {outcome.failure.splitlines()[0]}" if outcome.failure else "")


def _median(outcomes: list[Outcome], key: str, digits: int) -> str:
    values = [o.summary()[key] for o in outcomes if o.summary()[key] is not None]
    return f"{statistics.median(values):,.{digits}f}" if values else "—"


def report(
    outcomes: list[Outcome], operations: list[str], contenders: list[str], rounds: int, *, goal_ms: float = GOAL_MS
) -> str:
    """The markdown table of medians, the failures (how many of each error), and the goal's PASS/FAIL lines."""
    rows = []
    for operation in operations:
        for contender in contenders:
            mine = [o for o in outcomes if (o.operation, o.contender) == (operation, contender)]
            good = [o for o in mine if o.failure is None]
            rows.append(
                [
                    operation,
                    f"`{contender}`",
                    f"{len(good)} of {len(mine)}",
                    *(_median(good, key, 1) for key in ("p50_ms", "p99_ms", "max_ms", "max_update_ms")),
                    *(_median(good, key, 0) for key in ("over_100ms", "over_1s", "failed", "queries")),
                    _median(good, "migration_s", 2),
                ]
            )
    header = ["operation", "contender", "rounds ok", "p50 (ms)", "p99 (ms)", "max (ms)", "max update (ms)"]
    header += ["> 100 ms", "> 1 s", "failed", "queries", "migration (s)"]
    lines = [markdown_table(header, rows, align="lllrrrrrrrrr").rstrip("\n")]
    for o in outcomes:
        if o.failure:
            lines.append(f"- round {o.round}, {o.operation}, `{o.contender}` failed: {o.failure}")
        if o.failures:
            errors = collections.Counter(failure.error.splitlines()[0] for failure in o.failures)
            counted = "; ".join(f"{count} of {error}" for error, count in sorted(errors.items()))
            where = f"round {o.round}, {o.operation}, `{o.contender}`"
            lines.append(f"- {where}: {len(o.failures)} queries failed: {counted}")
    return "\n".join([*lines, "", *goal_lines(outcomes, operations, goal_ms=goal_ms)]) + "\n"


def goal_lines(outcomes: list[Outcome], operations: list[str], *, goal_ms: float = GOAL_MS) -> list[str]:
    """Per operation and online contender (``byhand online`` and its variants): PASS if every
    round succeeded, its slowest query took <= ``goal_ms`` and no query failed; and how long
    migrate stalled the updates."""
    lines = []
    onlines = [c for c in dict.fromkeys(o.contender for o in outcomes) if c.startswith("byhand online")]
    for operation in operations:
        for contender in onlines:
            online = [o for o in outcomes if (o.operation, o.contender) == (operation, contender)]
            maxima = [o.summary()["max_ms"] for o in online]
            failed = sum(len(o.failures) for o in online)
            ok = bool(online) and all(o.failure is None for o in online) and max(maxima) <= goal_ms and not failed
            lines.append(
                f"{'PASS' if ok else 'FAIL'} {operation}: {contender}, max latency <= {goal_ms:.0f} ms and no "
                f"failed query: max {', '.join(f'{m:.1f}' for m in maxima)} ms over the rounds, {failed} failed"
                + ("" if all(o.failure is None for o in online) else ", the runbook failed (above)")
                + "."
            )
        migrate = [o.summary() for o in outcomes if (o.operation, o.contender) == (operation, "migrate")]
        if migrate:
            stall = ", ".join(
                f"{s['max_update_ms']:.0f} ms during a {s['migration_s']:.2f} s migration" for s in migrate
            )
            lines.append(f"  migrate's slowest update, {operation}: {stall}.")
    return lines


def zero_downtime_version(path: str | None) -> str | None:
    if path is None:
        return None
    dists = importlib.metadata.distributions(path=[path], name="django-pg-zero-downtime-migrations")
    return next((dist.version for dist in dists), None)


def write_json(path: Path, outcomes: list[Outcome], scenario: DataclassInstance, context: dict[str, Any]) -> None:
    """Raw numbers: each window's summary, failures and every query's (stream, due, latency ms)."""
    data = {
        **context,
        "scenario": asdict(scenario),
        "windows": [
            {
                "operation": o.operation,
                "contender": o.contender,
                "round": o.round,
                "failure": o.failure,
                **o.summary(),
                **o.raw(),
            }
            for o in outcomes
        ],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="postgres://...; dropped and created afresh")
    add_load_arguments(parser, rows=5_000_000, rounds=2)
    add_subset_argument(parser, "--operations", OPERATIONS)
    parser.add_argument(
        "--zero-downtime-path",
        help="a directory holding django-pg-zero-downtime-migrations (pip install --target DIR); "
        "without it the zero-downtime contender is skipped",
    )
    return parse_load_arguments(parser, argv, vendor="postgresql")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    database = Database.from_url(args.database_url)
    scenario = Scenario(args.rows, args.read_rate, args.update_rate, args.threads, args.zero_downtime_path)
    contenders = [c for c in CONTENDERS if c != "zero-downtime" or args.zero_downtime_path]
    context = {
        "context": describe_context(),
        "server": database.server_version(),
        "zero_downtime": zero_downtime_version(args.zero_downtime_path),
    }
    started = time.perf_counter()
    with scratch(database, keep=args.keep, prefix="byhand_onlineload_") as workdir:
        stage = Stage(database, scenario, workdir)
        try:
            say(f"creating {database.name}, migrating to 0001, loading {args.rows:,} rows ...")
            stage.prepare()
            say(f"  ready in {time.perf_counter() - started:.1f} s")
            outcomes = measure(stage, args.operations, contenders, rounds=args.rounds)
        except BenchmarkError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    print(f"## Online forms under load, {args.rounds} round(s)\n\n{context['context']}\n")
    print(
        f"{context['server']}; django-pg-zero-downtime-migrations {context['zero_downtime'] or '(not run)'}. "
        f"{args.rows:,} rows; {args.read_rate:g} reads/s + {args.update_rate:g} updates/s on {args.threads} "
        "connections, open loop; byhand apply with its defaults (--lock-timeout 100ms, --max-attempts 20, "
        "--max-wait 10m, no statement timeout); zero-downtime with its defaults (no lock or statement timeout). "
        "Medians over the rounds that succeeded; latency from each query's due time; migration = the whole "
        f"process, start-up included. Wall time {time.perf_counter() - started:.0f} s.\n"
    )
    print(report(outcomes, args.operations, contenders, args.rounds), end="")
    for operation, statements in stage.runbooks.items():
        print(f"\n`{operation}`, the online runbook's statements:\n\n```sql\n{statements}\n```")
    if args.json_out:
        write_json(args.json_out, outcomes, scenario, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
