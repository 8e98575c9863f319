#!/usr/bin/env python
"""An index built in place on a big MariaDB table under load: does its last lock throw the build away?

    python benchmarks/mariadb_build.py --before-src DIR [--database-url URL] [--rows 5000000] [--rounds 3]
                                       [--read-rate 150] [--update-rate 50] [--threads 8]
                                       [--give-up-after 300] [--head-src DIR] [--json-out FILE]

MariaDB only (issue 20, item 5). byhand apply's default lock timeout, 100 ms, runs on
MariaDB as NOWAIT (lock_wait_timeout counts whole seconds). An index built in place
(CREATE INDEX, ALGORITHM=NOCOPY, LOCK=NONE) takes its exclusive metadata lock again at
the end of the build; with NOWAIT one query in flight on the table at that moment makes
the finished build fail (1205) and apply builds it all again. Since 45c69fa a statement
the rehearsal saw read every row ("observed": {"scan": true}) waits at least 1 s.

The database named in the URL is created afresh, benchmarks/mariabuild/ migrated to
archive.0001 and its table filled with --rows rows of two random 190-character columns
(the SEQUENCE engine); ``manage.py byhand sql archive 0002 [--online]`` writes the two
runbooks once (byhand of --head-src), and 0002's index (an AddIndex on both columns) is
built once with no load, to give the build's own time. Then, for each contender, from the
same schema (index dropped, 0002 unrecorded, journal emptied, checked):

    t = 0      the load starts, open loop on --threads autocommit connections: --read-rate
               primary-key SELECTs and --update-rate one-row UPDATEs by primary key (of
               ``hits``, a column the index does not cover) per second; query k of a kind is
               due at t0 + k/rate and its latency counts from then; every failed query is kept;
    t = 1 s    the contender's migration starts;
    end        1 s after it has ended, or after --give-up-after seconds, when the benchmark
               kills it (and its CREATE INDEX in the server) and counts it as not done.

Contenders: ``migrate`` (``manage.py migrate archive 0002``, the server's lock_wait_timeout),
and ``byhand apply RUNBOOK --json`` (apply's defaults) of the plain and of the --online
runbook, with byhand from --head-src (default: this tree's src/) and from --before-src (src/
of another checkout, e.g. ``git worktree add /work/wt-before d739a28``), each put first on
PYTHONPATH and checked by importing byhand from it. Rounds are interleaved. The report
gives, per contender, medians over the rounds and each column's worst round: the
migration's time, apply's attempts (statement 1's starts, lock-timeout events, and
migration-done's "attempts"), p50/p99/max latency, queries over 100 ms and 1 s, failed
queries; then every window, and the goal: at --head-src the build finishes in one attempt,
with no query over 100 ms and none failed, in every round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchlib import (
    BenchmarkError,
    Database,
    add_load_arguments,
    describe_context,
    markdown_table,
    parse_load_arguments,
    say,
    scratch,
)
from mariadb_stage import LEAD, Build, Contender, Scenario, attempts_of, byhand_source
from online_stage import Outcome

__all__ = ["main"]

DEFAULT_URL = "mysql://root@127.0.0.1:3306/byhand_mariabuild"
HEAD_SRC = Path(__file__).resolve().parent.parent / "src"
GOAL_MS = 100.0
END_S = 2.0  # the migration's last seconds, where its last lock is
COLUMNS = (
    "migration (s)",
    "attempts",
    "lock timeouts",
    "p50 (ms)",
    "p99 (ms)",
    "max (ms)",
    "> 100 ms",
    "> 1 s",
    "failed",
)
COUNTS = ("attempts", "lock timeouts", "> 100 ms", "> 1 s", "failed")


def commit_of(src: Path) -> str:
    """The last commit that changed ``src`` in its checkout, marked dirty if src/ differs from it."""
    git = ["git", "-C", str(src)]
    commit = subprocess.run(
        [*git, "log", "-1", "--format=%h", "--", "."], check=False, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "."], check=False, capture_output=True, text=True
    ).stdout
    return (commit or src.name) + ("+dirty" if dirty.strip() else "")


def contenders_of(head: Path, before: Path | None) -> list[Contender]:
    sources = [(commit_of(head), head)] + ([(commit_of(before), before)] if before else [])
    contenders = [Contender("migrate", head)]
    for kind in ("plain", "online"):
        contenders += [Contender(f"byhand {label} {kind}", src, kind) for label, src in sources]
    return contenders


def measure(build: Build, contenders: list[Contender], *, rounds: int) -> list[Outcome]:
    """Every contender, ``rounds`` times, interleaved."""
    outcomes = []
    for index in range(1, rounds + 1):
        for contender in contenders:
            outcome = build.run(contender, index)
            outcomes.append(outcome)
            say(f"  round {index}/{rounds} {contender.name:24} {_window(outcome)}")
    build.reset()
    return outcomes


def _values(outcome: Outcome) -> dict[str, float | None]:
    s, tries = outcome.summary(), attempts_of(outcome.events)
    byhand = bool(outcome.events)
    return {
        "migration (s)": s["migration_s"],
        "attempts": (tries.reported or tries.started) if byhand else None,
        "lock timeouts": tries.lock_timeouts if byhand else None,
        "p50 (ms)": s["p50_ms"],
        "p99 (ms)": s["p99_ms"],
        "max (ms)": s["max_ms"],
        "> 100 ms": s["over_100ms"],
        "> 1 s": s["over_1s"],
        "failed": s["failed"],
    }


def _window(outcome: Outcome) -> str:
    v, tries = _values(outcome), attempts_of(outcome.events)
    text = (
        f"{v['migration (s)']:7.1f} s, attempts {v['attempts'] or '-'}, max {v['max (ms)']:8.1f} ms, "
        f"{v['> 100 ms']} > 100 ms, {v['failed']} failed of {outcome.summary()['queries']}"
    )
    text += f"; max {_end_max(outcome):.1f} ms in the migration's last {END_S:g} s and after"
    if tries.failed_after:
        text += f"; lock timeouts {', '.join(f'{s:.1f}' for s in tries.failed_after)} s into their attempt"
    if tries.build_s is not None:
        text += f"; build {tries.build_s:.1f} s"
    return text + (f"; NOT DONE: {outcome.failure.splitlines()[0]}" if outcome.failure else "")


def _end_max(outcome: Outcome) -> float:
    """The slowest query due in the migration's last END_S seconds or after: its last lock."""
    end = LEAD + (outcome.migration_seconds or 0.0)
    return max((1000 * q.latency for q in outcome.samples if q.due >= end - END_S), default=0.0)


def _cell(value: float | None, column: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if column in COUNTS else f"{value:,.1f}"


def _aggregate(outcomes: list[Outcome], column: str, *, worst: bool) -> str:
    values = [v for o in outcomes if (v := _values(o)[column]) is not None]
    if not values:
        return "—"
    return _cell(max(values) if worst else statistics.median(values), column)


def report(outcomes: list[Outcome], contenders: list[Contender], *, head: Path) -> str:
    """Medians and worst rounds per contender, every window, the goal's lines."""
    rows = []
    for contender in contenders:
        mine = [o for o in outcomes if o.contender == contender.name]
        done = f"{sum(o.failure is None for o in mine)} of {len(mine)}"
        for worst in (False, True):
            cells = [_aggregate(mine, column, worst=worst) for column in COLUMNS]
            rows.append([f"`{contender.name}`", "worst" if worst else "median", done, *cells])
    header = ["contender", "of rounds", "done", *COLUMNS]
    lines = [markdown_table(header, rows, align="lll" + "r" * len(COLUMNS)).rstrip("\n"), "", "Every window:", ""]
    window_rows = [[str(o.round), f"`{o.contender}`", _window(o)] for o in outcomes]
    lines.append(markdown_table(["round", "contender", "window"], window_rows, align="lll").rstrip("\n"))
    return "\n".join([*lines, "", *goal_lines(outcomes, contenders, head=head)]) + "\n"


def goal_lines(outcomes: list[Outcome], contenders: list[Contender], *, head: Path) -> list[str]:
    """PASS per runbook at ``head``: every round done in one attempt, no query over 100 ms,
    none failed; for the others, what happened."""
    lines = []
    for contender in (c for c in contenders if c.runbook):
        mine = [o for o in outcomes if o.contender == contender.name]
        values = [_values(o) for o in mine]
        said = (
            f"attempts {_listed(values, 'attempts', '{}')}; migration {_listed(values, 'migration (s)', '{:.1f}')} s; "
            f"max {_listed(values, 'max (ms)', '{:.1f}')} ms; "
            f"{sum(int(v['> 100 ms'] or 0) for v in values)} queries > 100 ms, "
            f"{sum(int(v['failed'] or 0) for v in values)} failed; "
            f"{sum(o.failure is not None for o in mine)} round(s) not done"
        )
        if contender.src != head:
            lines.append(f"- `{contender.name}`: {said}.")
            continue
        ok = all(o.failure is None and v["attempts"] == 1 for o, v in zip(mine, values, strict=True))
        ok = ok and all((v["max (ms)"] or 0) <= GOAL_MS and not v["failed"] for v in values)
        lines.append(f"- {'PASS' if ok else 'FAIL'} `{contender.name}` (one attempt, every query ≤ 100 ms): {said}.")
    return lines


def _listed(values: list[dict[str, float | None]], column: str, form: str) -> str:
    return ", ".join(form.format(v[column]) for v in values)


def write_json(path: Path, outcomes: list[Outcome], scenario: Scenario, context: dict[str, Any]) -> None:
    """Raw numbers: each window's values, failures, byhand's events and every query's (stream, due, latency ms)."""
    windows = [
        {
            "contender": o.contender,
            "round": o.round,
            "failure": o.failure,
            **_values(o),
            "attempts_detail": asdict(attempts_of(o.events)),
            **o.raw(),
        }
        for o in outcomes
    ]
    data = {**context, "scenario": {**asdict(scenario)}, "windows": windows}
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="mysql://...; dropped and created afresh")
    add_load_arguments(parser, rows=5_000_000, rounds=3)
    parser.add_argument(
        "--give-up-after", type=float, default=300.0, help="stop a migration running longer (default: %(default)s s)"
    )
    parser.add_argument("--head-src", type=Path, default=HEAD_SRC, help="byhand's src/ (default: this tree's)")
    parser.add_argument("--before-src", type=Path, help="src/ of byhand before (e.g. a worktree at d739a28)")
    return parse_load_arguments(parser, argv, vendor="mysql")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    database = Database.from_url(args.database_url)
    scenario = Scenario(args.rows, args.read_rate, args.update_rate, args.threads, args.give_up_after)
    head, before = args.head_src.resolve(), args.before_src.resolve() if args.before_src else None
    contenders = contenders_of(head, before)
    imports = {str(src): str(byhand_source(src)) for src in {c.src for c in contenders}}
    context = {"context": describe_context(), "server": database.server_version(), "imports": imports}
    started = time.perf_counter()
    with scratch(database, keep=args.keep, prefix="byhand_mariabuild_") as workdir:
        build = Build(database, scenario, head=head, workdir=workdir)
        try:
            say(f"byhand imported from {', '.join(imports.values())}")
            say(
                f"creating {database.name}, migrating to 0001, loading {args.rows:,} rows, building the index alone ..."
            )
            build.prepare()
            say(f"  ready in {time.perf_counter() - started:.1f} s; the index alone: {build.alone_s:.1f} s")
            outcomes = measure(build, contenders, rounds=args.rounds)
            statements = {kind: build.statements(kind) for kind in ("plain", "online")}
        except BenchmarkError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    print(f"## An index built in place under load (MariaDB), {args.rounds} round(s)\n\n{context['context']}\n")
    print(
        f"{context['server']}. {args.rows:,} rows; the index built with no load: {build.alone_s:.1f} s. "
        f"{args.read_rate:g} reads/s + {args.update_rate:g} updates/s on {args.threads} connections, open loop, "
        "latency from each query's due time; byhand apply with its defaults (--lock-timeout 100ms, "
        "--max-attempts 20, --max-wait 10m); migrate with the server's lock_wait_timeout; a migration still "
        f"running after {args.give_up_after:g} s is stopped and counted as not done. byhand imported from "
        f"{', '.join(imports.values())}. Migration = the whole process. Wall time "
        f"{time.perf_counter() - started:.0f} s.\n"
    )
    print(report(outcomes, contenders, head=head), end="")
    for kind, text in statements.items():
        print(f"\nThe {kind} runbook's statements:\n\n```sql\n{text}\n```")
    if args.json_out:
        write_json(args.json_out, outcomes, scenario, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
