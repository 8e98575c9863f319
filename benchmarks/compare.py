#!/usr/bin/env python
"""Is one commit of byhand faster than another? ``byhand sql`` (and ``byhand apply``) at
each, side by side.

    python benchmarks/compare.py REV REV [REV ...] [--database-url URL] [--rounds 5] [--project DIR] [--apply]
        [--ignore-observed] [--realworld PYTHON]

Exports src/ of each commit (git archive, put first on PYTHONPATH, as run.py's
--byhand-commit does), then times ``manage.py byhand sql --manual-steps -o FILE`` of the
generated project's whole plan on a fresh empty database, one commit after the other,
--rounds times after one untimed warm-up of each. Interleaving cancels the machine's
slow drifts; the runbooks must be the same apart from the header. With --apply, each
round also times ``byhand apply --skip-manual-steps`` of the first commit's runbook at
each commit, on a fresh empty database (the console script's whole process). Prints
each round, each commit's median and its ratio to the first commit's. With --realworld
PYTHON, the project is tests/realworld (the real third-party apps, whole plan), run by that
interpreter (its venv: ``scripts/realworld.sh 5.2 --venv-only``), with
--defaults-from-rehearsal (from empty, wagtail's defaults read rows its RunPython makes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import BenchmarkError, Database, manage_env, run_timed, runbook_body, say
from run import DEFAULT_PROJECT, export_commit

__all__ = ["main"]

TESTS = Path(__file__).resolve().parent.parent / "tests"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("revisions", nargs="+", metavar="REV", help="commits to compare, the first is the reference")
    parser.add_argument("--database-url", default="sqlite:////tmp/byhand_compare.sqlite3")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT)
    parser.add_argument("--apply", action="store_true", help="also time byhand apply of the runbook at each commit")
    parser.add_argument("--realworld", metavar="PYTHON", help="time tests/realworld's plan, run by this interpreter")
    parser.add_argument(
        "--ignore-observed",
        action="store_true",
        help="compare the runbooks without what the rehearsal saw each statement do (a commit before it was recorded)",
    )
    args = parser.parse_args(argv)
    if len(set(args.revisions)) != len(args.revisions) or len(args.revisions) < 2:
        parser.error("give two different commits or more")
    project = args.project.resolve()
    if not args.realworld and not (project / "manage.py").exists():
        raise BenchmarkError(f"no project in {project}: write it first with benchmarks/generate.py (or run.py)")
    with tempfile.TemporaryDirectory(prefix="byhand-compare-") as workdir:
        sources = {rev: export_commit(rev, Path(workdir)) for rev in args.revisions}
        times: dict[str, list[float]] = {rev: [] for rev in args.revisions}
        applies: dict[str, list[float]] = {rev: [] for rev in args.revisions}
        runbook = Path(workdir) / "reference.sql"
        for number in range(args.rounds + 1):  # round 0 warms up, untimed
            texts = {
                rev: _timed(rev, source, args.database_url, project, times[rev] if number else [], runbook, args)
                for rev, source in sources.items()
            }
            if len(set(texts.values())) != 1:
                raise BenchmarkError(f"the runbooks differ between {', '.join(args.revisions)}")
            for rev, source in sources.items() if args.apply else ():
                _applied(rev, source, args.database_url, runbook, applies[rev] if number else [])
            if number:
                say(f"  round {number}/{args.rounds}: " + ", ".join(f"{r} {t[-1]:.2f} s" for r, t in times.items()))
                if args.apply:
                    say("    apply: " + ", ".join(f"{r} {t[-1]:.2f} s" for r, t in applies.items()))
    _report("byhand sql", times, args)
    if args.apply:
        _report("byhand apply", applies, args)
    return 0


def _report(what: str, times: dict[str, list[float]], args: argparse.Namespace) -> None:
    reference = statistics.median(times[args.revisions[0]])
    print(f"{args.database_url.split(':')[0]}: {what}, medians of {args.rounds} interleaved rounds:")
    for rev, values in times.items():
        median = statistics.median(values)
        print(f"  {rev}: {median:.2f} s, {median / reference:.2f} x {args.revisions[0]}")


def _applied(rev: str, source: str, url: str, runbook: Path, times: list[float]) -> None:
    """One ``byhand apply`` of ``runbook`` by the commit exported at ``source``, on a fresh database."""
    database = Database.from_url(url)
    database.recreate()
    if database.vendor == "sqlite":
        Path(database.name).touch()  # byhand apply opens an existing file only
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "byhand.cli", "apply", str(runbook), "--database-url", url, "--skip-manual-steps"]
    try:
        run = run_timed(command, cwd=Path(source), env=env)
    finally:
        database.drop()
    if not run.ok:
        raise BenchmarkError(f"byhand apply at {rev} exited with {run.returncode}:\n{run.tail()}")
    times.append(run.seconds)


def _timed(
    rev: str, source: str, url: str, project: Path, times: list[float], reference: Path, args: argparse.Namespace
) -> str:
    """One ``byhand sql`` of the commit exported at ``source``, on a fresh database; its runbook's
    body. The first commit's runbook is kept as ``reference``."""
    database = Database.from_url(url)
    database.recreate()
    output = Path(tempfile.gettempdir()) / "byhand_compare.sql"
    env = {
        **os.environ,
        **manage_env(url),
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "manage.py", "byhand", "sql", "--manual-steps", "-o", str(output)]
    if args.realworld:
        env["DJANGO_SETTINGS_MODULE"] = "realworld.settings"
        env["PYTHONPATH"] = os.pathsep.join([source, str(TESTS)])
        command[:2] = [str(Path(args.realworld).absolute()), "-m", "django"]
        command.append("--defaults-from-rehearsal")  # wagtail's defaults read rows its RunPython makes
        project = TESTS
    try:
        run = run_timed(command, cwd=project, env=env)
    finally:
        database.drop()
    if not run.ok:
        raise BenchmarkError(f"byhand sql at {rev} exited with {run.returncode}:\n{run.tail()}")
    times.append(run.seconds)
    if not reference.exists():
        reference.write_bytes(output.read_bytes())
    return runbook_body(output, without_observed=args.ignore_observed)


if __name__ == "__main__":
    sys.exit(main())
