#!/usr/bin/env python
"""``byhand sql`` against ``migrate`` on real code: the third-party apps of tests/realworld.

    .venv-realworld52/bin/python benchmarks/realworld_sql.py \
        [--database-url URL] [--rounds 3] [--behind 3] [--markdown FILE]

The project is tests/realworld (wagtail and its contrib apps, django-cms, allauth,
oauth-toolkit, celery-beat/results, reversion, guardian, filer, easy-thumbnails: 318
migrations; make its venv with ``scripts/realworld.sh 5.2 --venv-only``), run by the
interpreter that runs this script. Two plans, each timed for ``manage.py migrate`` and for
``manage.py byhand sql --manual-steps --defaults-from-rehearsal -o FILE`` (wagtail's
defaults read rows its own RunPython makes), each process whole, Django's start-up
included:

- **empty**: the whole plan, on a fresh empty database;
- **behind**: a database a few releases behind: each third-party app's last ``--behind``
  migrations pending (and whatever depends on them; Django's own apps are current: with
  them, contenttypes' last migrations would leave nearly everything pending), everything
  else applied by ``migrate``.
  That database is made once; each timed run gets a copy of it (PostgreSQL: a template;
  MariaDB: mysqldump into a fresh database; SQLite: the file), made outside the timing.

A third process is timed beside them, the floor: Django's state work for the same plan
and nothing else (the state of what is applied, rendered once, then each operation's
state_forwards, as migrate evolves it), which ``byhand sql`` must also do unless it does
it more cheaply than Django. Per round: migrate, byhand sql and the floor of the empty
plan, then of the behind plan (one untimed warm-up round first). Every run is checked:
migrate applied, byhand sql wrote, and the floor evolved exactly the plan's migrations.
The report gives each median, the ratio of the medians, the floor, the median of each
round's own ratio (byhand sql over the migrate just before it), and the goal of issue 21:
at most 0.6. --database-url's database name is a prefix for the databases made and
dropped (``NAME_plan``, ``NAME_behind_base``, ``NAME_run``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import BenchmarkError, Database, Run, describe_context, markdown_table, run_timed, say

__all__ = ["main"]

TESTS = Path(__file__).resolve().parent.parent / "tests"
GOAL = 0.6
#: What each round times, in this order: migrate, byhand sql, and the floor under both.
TOOLS = ("migrate", "byhand", "floor")
_WROTE = re.compile(r"Wrote .* \((\d+) migrations?\)")

#: Run by the project's interpreter: the whole plan from empty, in order, and what a
#: database "behind" holds: every migration but each third-party app's last N and what
#: depends on them.
_PLAN = """
import json, sys
import django
django.setup()
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
behind = int(sys.argv[1])
executor = MigrationExecutor(connection)
graph = executor.loader.graph
plan = [(m.app_label, m.name) for m, _ in executor.migration_plan(graph.leaf_nodes(), clean_start=True)]
per_app = {}
for node in plan:
    per_app.setdefault(node[0], []).append(node)
pending = set()
for app, nodes in per_app.items():
    if apps.get_app_config(app).name.startswith("django."):
        continue  # Django's own apps are as current as the Django installed
    for node in nodes[-behind:]:
        pending.update(graph.backwards_plan(node))  # it and every migration that depends on it
applied = [node for node in plan if node not in pending]
targets = {}
for app, name in applied:
    targets[app] = name  # the app's last applied migration, in plan order
print(json.dumps({"plan": plan, "pending": [n for n in plan if n in pending], "targets": targets}))
"""

#: The floor: what the executor does to Django's states for the plan the database has
#: pending, and nothing else (no database work, no clones, no post_migrate): the project
#: state of what is applied, rendered once, then every operation's state_forwards, as
#: migrate's Migration.apply evolves it.
_FLOOR = """
import sys
import django
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
executor = MigrationExecutor(connection)
plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
state = executor._create_project_state(with_applied_migrations=True)
state.apps
for migration, _backwards in plan:
    for operation in migration.operations:
        operation.state_forwards(migration.app_label, state)
print(len(plan))
"""


class Project:
    """tests/realworld's project, run by ``python``, on the databases of one server."""

    def __init__(self, python: str, url: str, workdir: Path) -> None:
        self.python = python
        self.base = Database.from_url(url)
        self.workdir = workdir

    def database(self, suffix: str) -> Database:
        """A database of the same server, named after the URL's with ``suffix``."""
        if self.base.vendor == "sqlite":
            return Database.from_url(f"sqlite:///{self.workdir / f'realworld_{suffix}.sqlite3'}")
        stem = self.base.name or "byhand_bench"
        return Database.from_url(self.base.url.rsplit("/", 1)[0] + f"/{stem}_{suffix}")

    def env(self, database: Database) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
        env.update(DATABASE_URL=database.url, DJANGO_SETTINGS_MODULE="realworld.settings", PYTHONPATH=str(TESTS))
        return env

    def manage(self, database: Database, *args: str) -> Run:
        return run_timed([self.python, "-m", "django", *args], cwd=TESTS, env=self.env(database))

    def checked(self, what: str, run: Run) -> Run:
        if not run.ok:
            raise BenchmarkError(f"{what} exited with {run.returncode}:\n{run.tail(25)}")
        return run

    def plans(self, behind: int) -> dict[str, object]:
        database = self.database("plan")
        database.recreate()
        try:
            command = [self.python, "-c", _PLAN, str(behind)]
            done = self.checked("listing the plan", run_timed(command, cwd=TESTS, env=self.env(database)))
        finally:
            database.drop()
        plans: dict[str, object] = json.loads(done.stdout)
        return plans

    def make_behind(self, database: Database, targets: dict[str, str]) -> None:
        """The behind database: ``migrate APP TARGET`` for each app, in plan order."""
        database.recreate()
        for app, name in targets.items():
            self.checked(f"migrate {app} {name}", self.manage(database, "migrate", app, name, "--verbosity", "0"))

    def copy(self, source: Database, name: str) -> Database:
        """A fresh copy of ``source`` (untimed)."""
        copy = self.database(name)
        copy.drop()
        if source.vendor == "sqlite":
            shutil.copyfile(source.name, copy.name)
        elif source.vendor == "postgresql":
            copy._on_server(f'CREATE DATABASE "{copy.name}" TEMPLATE "{source.name}"')
        else:
            copy.recreate()
            client = ["-h", source.host or "127.0.0.1", "-P", str(source.port or 3306), "-u", source.user]
            env = {**os.environ, **({"MYSQL_PWD": source.password} if source.password else {})}
            dump = subprocess.run(
                ["mysqldump", *client, "--single-transaction", "--routines", source.name],
                capture_output=True,
                env=env,
                check=True,
            )
            subprocess.run(["mysql", *client, copy.name], input=dump.stdout, env=env, check=True)
        return copy

    def migrate(self, database: Database, expected: int) -> float:
        run = self.checked("migrate", self.manage(database, "migrate"))
        applied = run.stdout.count("  Applying ")
        if applied != expected:
            raise BenchmarkError(f"migrate applied {applied} migrations, the plan has {expected}")
        return run.seconds

    def floor(self, database: Database, expected: int) -> float:
        command = [self.python, "-c", _FLOOR]
        run = self.checked("the floor", run_timed(command, cwd=TESTS, env=self.env(database)))
        if int(run.stdout) != expected:
            raise BenchmarkError(f"the floor evolved {run.stdout.strip()} migrations, the plan has {expected}")
        return run.seconds

    def byhand_sql(self, database: Database, expected: int) -> float:
        runbook = self.workdir / "runbook.sql"
        runbook.unlink(missing_ok=True)
        args = ("byhand", "sql", "--manual-steps", "--defaults-from-rehearsal", "-o", str(runbook))
        run = self.checked("byhand sql", self.manage(database, *args))
        wrote = _WROTE.search(run.stderr)
        if not wrote or int(wrote.group(1)) != expected:
            raise BenchmarkError(
                f"byhand sql wrote {wrote.group(1) if wrote else 'no'} migrations, the plan has {expected}"
            )
        return run.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="", help="postgres://, mysql:// or (default) SQLite in a temporary directory"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3), after one warm-up")
    parser.add_argument(
        "--behind", type=int, default=3, help="each third-party app's last N migrations pending (default 3)"
    )
    parser.add_argument("--markdown", type=Path, help="also append the report to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.behind < 1:
        parser.error("--rounds and --behind must be at least 1")
    with tempfile.TemporaryDirectory(prefix="byhand_realworld_") as tmp:
        workdir = Path(tmp)
        url = args.database_url or f"sqlite:///{workdir / 'realworld.sqlite3'}"
        project = Project(sys.executable, url, workdir)
        plans = project.plans(args.behind)
        whole, pending = len(plans["plan"]), len(plans["pending"])  # type: ignore[arg-type]
        say(f"whole plan: {whole} migrations; behind: {pending} pending; making the behind database")
        behind = project.database("behind_base")
        timer = {"migrate": project.migrate, "byhand": project.byhand_sql, "floor": project.floor}
        times: dict[str, list[float]] = {f"{shape} {tool}": [] for shape in ("empty", "behind") for tool in TOOLS}
        try:
            project.make_behind(behind, plans["targets"])  # type: ignore[arg-type]
            for round_ in range(args.rounds + 1):
                timed = round_ > 0
                for shape, expected in (("empty", whole), ("behind", pending)):
                    for tool in TOOLS:
                        if shape == "empty":
                            database = project.database("run")
                            database.recreate()
                        else:
                            database = project.copy(behind, "run")
                        try:
                            seconds = timer[tool](database, expected)
                        finally:
                            database.drop()
                        if timed:
                            times[f"{shape} {tool}"].append(seconds)
                        say(f"round {round_}{'' if timed else ' (warm-up)'}: {shape} {tool} {seconds:.1f} s")
        finally:
            behind.drop()
        report = _report(times, whole, pending, args, behind.server_version())
    print(report)
    if args.markdown:
        with args.markdown.open("a", encoding="utf-8") as out:
            out.write(report + "\n")
    return 0


def _report(times: dict[str, list[float]], whole: int, pending: int, args: argparse.Namespace, vendor: str) -> str:
    rows = []
    for shape, size in (
        ("empty", f"whole plan, {whole} migrations, empty database"),
        ("behind", f"{pending} pending (each third-party app's last {args.behind})"),
    ):
        migrate, byhand, floor = (times[f"{shape} {tool}"] for tool in TOOLS)
        paired = [b / m for m, b in zip(migrate, byhand, strict=True)]
        ratio = statistics.median(byhand) / statistics.median(migrate)
        rows.append(
            [
                size,
                f"{statistics.median(migrate):.2f}",
                f"{statistics.median(byhand):.2f}",
                f"{ratio:.2f}",
                f"{statistics.median(floor):.2f} ({statistics.median(floor) / statistics.median(migrate):.2f})",
                f"{statistics.median(paired):.2f} ({', '.join(f'{p:.2f}' for p in paired)})",
                "met" if ratio <= GOAL else "**not met**",
            ]
        )
    header = [
        "plan",
        "migrate (median s)",
        "byhand sql (median s)",
        "byhand / migrate",
        "floor (median s, / migrate)",
        "byhand / migrate per round",
        f"goal <= {GOAL}",
    ]
    return f"### tests/realworld on {vendor}, {args.rounds} rounds\n\n{describe_context()}\n\n" + markdown_table(
        header, rows, align="lrrrrll"
    )


if __name__ == "__main__":
    sys.exit(main())
