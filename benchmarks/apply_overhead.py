#!/usr/bin/env python
"""Time ``byhand apply`` against the vendor's own CLI running the same runbook, side by side.

    python benchmarks/apply_overhead.py [--database-url URL ...] [--rounds 5] [--project DIR]

On the generated project (benchmarks/generate.py; written first if missing), for each
--database-url (SQLite in a temporary directory by default; repeat the option for
several vendors; for PostgreSQL and MariaDB the URL's database is a name prefix, as
for run.py): ``manage.py byhand sql --manual-steps -o FILE`` writes the runbook of the
whole plan for an empty database, once, untimed (run.py's step (b)). Then, --rounds
times interleaved after one untimed warm-up of each, on a fresh empty database each:

(a) the vendor's CLI: ``psql -X -q -v ON_ERROR_STOP=1 -f FILE``, ``mariadb < FILE``
    (``mysql`` if there is no ``mariadb``), ``sqlite3 -bail DB < FILE``;
(b) ``byhand apply FILE --database-url URL``, with ``--skip-manual-steps`` when the
    runbook has manual steps;
(c) the floor of any Python executor run as a process: ``floor_executor.py FILE URL``
    (imports the driver and byhand's parser, sends the statements one by one, nothing else);
(d) that floor plus the least journal that makes resuming exact: ``floor_executor.py
    --journal`` (one INSERT per migration inside its transaction; on MariaDB, where DDL
    commits alone, ``SHOW CREATE TABLE`` and a "started" row before each DDL statement).

Every time is a whole process's wall-clock time; after each run, django_migrations
must hold one row per migration of the plan. The report is a markdown table of
medians and each contender's ratio to the CLI, with byhand's goal: <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    BenchmarkError,
    Database,
    Run,
    apply_command,
    describe_context,
    markdown_table,
    run_timed,
    say,
)
from run import DEFAULT_PROJECT, HERE, Bench, Server, server_for

__all__ = ["main"]

GOAL_BYHAND_OVER_CLI = 1.2
MARKER = "-- byhand: "
TIMEOUT = 600.0


@dataclass
class VendorTimes:
    vendor: str
    server: str
    plan_size: int
    cli: str
    manual_steps: bool
    cli_seconds: list[float] = field(default_factory=list)
    byhand_seconds: list[float] = field(default_factory=list)
    floor_seconds: list[float] = field(default_factory=list)
    journal_seconds: list[float] = field(default_factory=list)
    byhand_failures: list[str] = field(default_factory=list)


def cli_command(database: Database, runbook: Path) -> tuple[list[str], dict[str, str], Path | None]:
    """The vendor's own client running ``runbook`` on ``database``: arguments, extra environment, standard input."""
    if database.vendor == "sqlite":
        return ["sqlite3", "-bail", database.name], {}, runbook
    if database.vendor == "postgresql":
        args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", database.host, "-U", database.user]
        args += ["-p", str(database.port or 5432), "-d", database.name, "-f", str(runbook)]
        return args, {"PGPASSWORD": database.password} if database.password else {}, None
    client = "mariadb" if shutil.which("mariadb") else "mysql"
    args = [client, "-h", database.host, "-P", str(database.port or 3306), "-u", database.user, database.name]
    return args, {"MYSQL_PWD": database.password} if database.password else {}, runbook


def has_manual_steps(runbook: Path) -> bool:
    """Whether the runbook has a manual step (a RunPython written as ``--manual-steps``)."""
    for line in runbook.read_text(encoding="utf-8").splitlines():
        if line.startswith(MARKER) and json.loads(line[len(MARKER) :]).get("step") == "manual":
            return True
    return False


class Contest:
    """One vendor: the runbook written once, then the CLI and byhand apply on fresh databases."""

    def __init__(self, server: Server, project: Path, workdir: Path) -> None:
        self.server = server
        self.bench = Bench(python=sys.executable, project=project, server=server, workdir=workdir)
        self.runbook = workdir / "runbook.sql"  # where Bench.run_byhand writes it
        self.plan_size = 0

    def prepare(self) -> VendorTimes:
        self.plan_size = len(self.bench.plan())
        seconds = self.bench.run_byhand(self.plan_size)
        say(f"{self.server.vendor}: runbook of {self.plan_size} migrations written in {seconds:.1f} s")
        database = Database.from_url(self.server.url_for("cli"))
        client = cli_command(database, self.runbook)[0][0]
        manual_steps = has_manual_steps(self.runbook)
        return VendorTimes(database.vendor, database.server_version(), self.plan_size, client, manual_steps)

    def run_cli(self) -> Run:
        with self._fresh("cli") as database:
            args, env, stdin = cli_command(database, self.runbook)
            run = run_timed(args, env={**os.environ, **env}, stdin=stdin, timeout=TIMEOUT)
            if not run.ok:
                raise BenchmarkError(f"{args[0]} exited with {run.returncode}:\n{run.tail()}")
            self._check_applied("the CLI", database)
        return run

    def run_byhand(self, manual_steps: bool) -> Run:
        with self._fresh("apply") as database:
            options = ["--skip-manual-steps"] if manual_steps else []
            run = run_timed(apply_command(self.runbook, database.url, *options), timeout=TIMEOUT)
            if run.ok:
                self._check_applied("byhand apply", database)
        return run

    def run_floor(self, *, journal: bool) -> Run:
        with self._fresh("floor") as database:
            args = [sys.executable, str(HERE / "floor_executor.py"), str(self.runbook), database.url]
            run = run_timed(args + (["--journal"] if journal else []), timeout=TIMEOUT)
            if not run.ok:
                raise BenchmarkError(f"floor_executor.py exited with {run.returncode}:\n{run.tail()}")
            self._check_applied("floor_executor.py", database)
        return run

    @contextmanager
    def _fresh(self, name: str) -> Iterator[Database]:
        """A fresh empty database; for SQLite an empty file, as byhand apply opens only an existing one."""
        with self.server.fresh(name) as url:
            database = Database.from_url(url)
            if database.vendor == "sqlite":
                database.connect().close()
            yield database
        if database.vendor == "sqlite":  # byhand apply's run-lock file, left beside the database on purpose
            for lock in Path(database.name).parent.glob(Path(database.name).name + ".*.lock"):
                lock.unlink()

    def _check_applied(self, what: str, database: Database) -> None:
        rows = database.scalar("SELECT COUNT(*) FROM django_migrations")
        if rows != self.plan_size:
            raise BenchmarkError(f"after {what}, django_migrations has {rows} rows; the plan has {self.plan_size}")


def measure(contest: Contest, rounds: int) -> VendorTimes:
    """The runbook, one untimed warm-up of each, then ``rounds`` interleaved timed pairs."""
    times = contest.prepare()
    contest.run_cli()
    contest.run_byhand(times.manual_steps)
    for index in range(1, rounds + 1):
        cli = contest.run_cli()
        times.cli_seconds.append(cli.seconds)
        byhand = contest.run_byhand(times.manual_steps)
        if byhand.ok:
            times.byhand_seconds.append(byhand.seconds)
        else:
            times.byhand_failures.append(f"exited with {byhand.returncode}: {byhand.tail(1)}")
        times.floor_seconds.append(contest.run_floor(journal=False).seconds)
        times.journal_seconds.append(contest.run_floor(journal=True).seconds)
        outcome = f"{byhand.seconds:.2f} s" if byhand.ok else f"FAILED ({times.byhand_failures[-1]})"
        say(
            f"  round {index}/{rounds}: {times.cli} {cli.seconds:.2f} s, byhand apply {outcome}, "
            f"floor {times.floor_seconds[-1]:.2f} s, floor + journal {times.journal_seconds[-1]:.2f} s"
        )
    return times


def report(results: list[VendorTimes], rounds: int, context: str) -> str:
    """A markdown table of medians (min-max) per vendor, notes, and one PASS/FAIL line per vendor."""
    rows, notes, verdicts = [], [], []
    for times in results:
        cli = statistics.median(times.cli_seconds)
        byhand = statistics.median(times.byhand_seconds) if times.byhand_seconds else None
        ratio = None if byhand is None else byhand / cli
        floor = statistics.median(times.floor_seconds) / cli
        journal = statistics.median(times.journal_seconds) / cli
        rows.append(
            [
                times.server,
                str(times.plan_size),
                f"`{times.cli}` {_spread(times.cli_seconds)}",
                _spread(times.byhand_seconds),
                "—" if ratio is None else f"{ratio:.2f}",
                f"{_spread(times.floor_seconds)}: {floor:.2f}",
                f"{_spread(times.journal_seconds)}: {journal:.2f}",
            ]
        )
        if times.manual_steps:
            notes.append(
                f"- {times.vendor}: the runbook has manual steps; byhand apply is run with --skip-manual-steps."
            )
        if times.byhand_failures:
            notes.append(
                f"- {times.vendor}: byhand apply failed in {len(times.byhand_failures)} of {rounds} rounds: "
                f"{times.byhand_failures[0]}"
            )
        if ratio is None:
            verdicts.append(
                f"FAIL {times.vendor}: byhand / CLI <= {GOAL_BYHAND_OVER_CLI}: byhand apply never succeeded."
            )
        else:
            verdict = "PASS" if ratio <= GOAL_BYHAND_OVER_CLI else "FAIL"
            verdicts.append(f"{verdict} {times.vendor}: byhand / CLI <= {GOAL_BYHAND_OVER_CLI}: {ratio:.2f}.")
    header = [
        "server",
        "migrations",
        "CLI, median (min-max) s",
        "byhand apply, median (min-max) s",
        "byhand / CLI",
        "floor (c): s, / CLI",
        "floor + journal (d): s, / CLI",
    ]
    title = f"## byhand apply vs the vendor's CLI on the whole plan, empty database, {rounds} rounds"
    table = markdown_table(header, rows, align="lrrrrrr")
    return "\n".join([title, "", context, "", table, *notes, *([""] if notes else []), *verdicts]) + "\n"


def _spread(seconds: list[float]) -> str:
    if not seconds:
        return "failed"
    return f"{statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="sqlite:///DIR/NAME.sqlite3, postgres://USER@HOST:PORT/NAME or mysql://USER@HOST:PORT/NAME; "
        "repeat for several vendors (default: SQLite in a temporary directory)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each (default: %(default)s)")
    parser.add_argument(
        "--project", type=Path, default=DEFAULT_PROJECT, help="generated project (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    project: Path = args.project.resolve()
    if not (project / "manage.py").exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(project)], check=True)

    context = describe_context()
    workdir = Path(tempfile.mkdtemp(prefix="byhand_overhead_"))
    urls = args.database_url or [f"sqlite:///{workdir / 'overhead.sqlite3'}"]
    try:
        results = []
        for number, url in enumerate(urls):
            vendor_dir = workdir / str(number)
            vendor_dir.mkdir()
            contest = Contest(server_for(_absolute(url), sys.executable), project, vendor_dir)
            results.append(measure(contest, args.rounds))
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(results, args.rounds, context), end="")
    return 0


def _absolute(url: str) -> str:
    """A SQLite URL with an absolute path: manage.py runs in the project's directory, the CLIs here."""
    database = Database.from_url(url)
    return f"sqlite:///{Path(database.name).resolve()}" if database.vendor == "sqlite" else url


if __name__ == "__main__":
    sys.exit(main())
