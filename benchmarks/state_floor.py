#!/usr/bin/env python
"""How close can ``byhand sql`` get to 0.6 x ``migrate``? The floor under it: Django's state work alone.

    python benchmarks/state_floor.py [--database-url URL] [--rounds 5] [--project DIR]

Three processes on a fresh empty database each, interleaved, --rounds times after one
untimed warm-up of each, for the generated project's whole plan:

(a) ``manage.py migrate``;
(b) ``manage.py byhand sql --manual-steps -o FILE`` (rehearsal included);
(c) the floor: a process that does only what (b) cannot leave out and (a) does too:
    start Django, load the migrations, plan as byhand does, render the start state once
    and evolve it operation by operation exactly as byhand's compiler does (a clone
    before each operation that reads its old state, then ``state_forwards``, with the
    garbage collector set as byhand sets it). No schema editor, no SQL, no scratch
    database, no runbook.

(c) is a floor because Django's schema editor needs the state of the moment, so each
operation's SQL must be produced between two steps of that evolution, in order; nothing
of it can be skipped or moved to another core without giving up "exactly Django's SQL".
The child reports where its time went (start-up, plan, states) on stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

from benchlib import BenchmarkError, Database, manage_env, run_timed, say
from run import DEFAULT_PROJECT

__all__ = ["main"]

_STARTED = time.perf_counter()


def child() -> None:
    """(c): byhand's state evolution for the whole pending plan, and nothing else."""
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    import django

    django.setup()
    from django.db import DEFAULT_DB_ALIAS

    from byhand import compiling, planning

    set_up = time.perf_counter()
    plan = planning.pending_plan(database=DEFAULT_DB_ALIAS)
    planned = time.perf_counter()
    operations = 0
    with planning.fewer_collections():  # the collector as byhand's compiler sets it
        state_before = compiling._states(plan)
        for migration in plan.migrations:
            state = state_before(migration)
            for operation in migration.operations:
                old_state = state if compiling._reads_no_state(operation) else planning.clone_state(state)
                operation.state_forwards(migration.app_label, state)
                del old_state
                operations += 1
    done = time.perf_counter()
    report = {
        "migrations": len(plan.migrations),
        "operations": operations,
        "start-up": set_up - _STARTED,
        "plan": planned - set_up,
        "states": done - planned,
    }
    print(json.dumps(report), file=sys.stderr)
    gc.freeze()  # as byhand's command line does: the garbage is not collected on the way out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child()
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/byhand_state_floor.sqlite3")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    project = args.project.resolve()
    if not (project / "manage.py").exists():
        raise SystemExit(f"{project} has no manage.py: run benchmarks/generate.py first")
    commands = {
        "migrate": [sys.executable, "manage.py", "migrate", "-v0"],
        "byhand sql": [sys.executable, "manage.py", "byhand", "sql", "--manual-steps", "-o", "/tmp/byhand_floor.sql"],
        "floor": [sys.executable, str(Path(__file__).resolve()), "--child"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    phases: list[dict[str, float]] = []
    for number in range(args.rounds + 1):  # round 0 warms up, untimed
        for name, command in commands.items():
            database = Database.from_url(args.database_url)
            database.recreate()
            try:
                run = run_timed(command, cwd=project, env={**os.environ, **manage_env(args.database_url)})
            finally:
                database.drop()
            if not run.ok:
                raise BenchmarkError(f"{name} exited with {run.returncode}:\n{run.tail()}")
            if number:
                times[name].append(run.seconds)
                if name == "floor":
                    phases.append(json.loads(run.stderr.strip().splitlines()[-1]))
        if number:
            say(f"  round {number}/{args.rounds}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    medians = {name: statistics.median(values) for name, values in times.items()}
    migrate = medians["migrate"]
    vendor = args.database_url.split(":")[0]
    print(f"{vendor}, medians of {args.rounds} interleaved rounds ({phases[0]['migrations']} migrations):")
    for name, value in medians.items():
        print(f"  {name:<11} {value:6.2f} s  {value / migrate:.2f} x migrate")
    for phase in ("start-up", "plan", "states"):
        value = statistics.median(p[phase] for p in phases)
        print(f"  floor's {phase:<9} {value:6.2f} s  {value / migrate:.2f} x migrate")
    print("  rounds: " + "; ".join(" / ".join(f"{t[i]:.2f}" for t in times.values()) for i in range(args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
