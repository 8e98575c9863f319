#!/usr/bin/env python
"""Time ``byhand sql`` against ``migrate`` and a ``sqlmigrate`` loop, side by side.

    python benchmarks/run.py [--database-url URL] [--python PYTHON] [--repeat 5] [--sample 40]

On the generated project (benchmarks/generate.py; written first if missing), and on
the vendor that --database-url names (SQLite by default; postgres://... and
mysql://... use the server, creating and dropping databases named after the URL's):

(a) ``manage.py migrate`` on a fresh empty database;
(b) ``manage.py byhand sql --manual-steps -o FILE`` for the whole plan, on a fresh
    empty database (its rehearsal on a scratch copy included: the only mode);
(c) ``manage.py sqlmigrate APP NAME``, one process per migration: a fixed, seeded
    sample spread over the plan (one migration drawn from each of --sample equal
    slices), extrapolated to the whole plan as mean x plan size.

(a) and (b) run --repeat times each, interleaved (a, b, a, b, ...), after one
untimed warm-up of each; the (c) sample is split into --repeat chunks, one after
each (a, b) pair, so that the machine's noise falls on all three alike. Every
time is the wall-clock time of a whole process (subprocess), Django's start-up
included. The report is a markdown table of medians and the two ratios with their
goals: byhand/migrate <= 0.6 and sqlmigrate-loop/byhand >= 30.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
DEFAULT_PROJECT = HERE / "generated"
GOAL_BYHAND_OVER_MIGRATE = 0.6
GOAL_LOOP_OVER_BYHAND = 30.0
_PLAN_LINE = re.compile(r"^\[[ X]\]\s+([\w]+)\.(\w+)")
_WROTE = re.compile(r"Wrote .* \((\d+) migrations\)")


class BenchmarkError(Exception):
    """A timed command failed, or a database could not be created."""


def _run_client(args: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(list(args), env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(args[:1])} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


class Server:
    """Makes fresh empty databases for one vendor, named after the URL's database."""

    vendor: str

    def __init__(self, url: str) -> None:
        self.url = url
        self.parts = urlsplit(url)

    def url_for(self, name: str) -> str:
        raise NotImplementedError

    def create(self, name: str) -> str:
        """An empty database called ``name`` (dropped first if it exists); its URL."""
        raise NotImplementedError

    def drop(self, name: str) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    @contextmanager
    def fresh(self, name: str) -> Iterator[str]:
        url = self.create(name)
        try:
            yield url
        finally:
            self.drop(name)


class SQLiteServer(Server):
    """A new file per database, beside the URL's file (a temporary directory by default)."""

    vendor = "sqlite"

    def __init__(self, url: str, python: str) -> None:
        super().__init__(url)
        self.python = python
        path = Path(unquote(self.parts.path[1:] if self.parts.path.startswith("//") else self.parts.path))
        self.directory = path.parent
        self.stem = path.stem

    def _path(self, name: str) -> Path:
        return self.directory / f"{self.stem}_{name}.sqlite3"

    def url_for(self, name: str) -> str:
        return f"sqlite:///{self._path(name)}"

    def create(self, name: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.drop(name)  # a database that does not exist yet is empty; Django creates the file
        return self.url_for(name)

    def drop(self, name: str) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self._path(name)}{suffix}").unlink(missing_ok=True)

    def version(self) -> str:
        code = "import sqlite3; print(sqlite3.sqlite_version)"
        return "SQLite " + _run_client([self.python, "-c", code], {})


class PostgreSQLServer(Server):
    """CREATE/DROP DATABASE through psql, connected to the server's 'postgres' database."""

    vendor = "postgresql"

    def _client(self, sql: str) -> str:
        parts = self.parts
        args = ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql]
        if parts.hostname:
            args += ["-h", parts.hostname]
        if parts.port:
            args += ["-p", str(parts.port)]
        if parts.username:
            args += ["-U", unquote(parts.username)]
        env = {"PGPASSWORD": unquote(parts.password)} if parts.password else {}
        return _run_client(args, env)

    def url_for(self, name: str) -> str:
        return urlunsplit(self.parts._replace(path=f"/{self._name(name)}"))

    def _name(self, name: str) -> str:
        return f"{unquote(self.parts.path.lstrip('/')) or 'byhand_bench'}_{name}"

    def create(self, name: str) -> str:
        self.drop(name)
        self._client(f'CREATE DATABASE "{self._name(name)}"')
        return self.url_for(name)

    def drop(self, name: str) -> None:
        self._client(f'DROP DATABASE IF EXISTS "{self._name(name)}" WITH (FORCE)')

    def version(self) -> str:
        return "PostgreSQL " + self._client("SHOW server_version")


class MySQLServer(PostgreSQLServer):
    """CREATE/DROP DATABASE through the mysql client."""

    vendor = "mysql"

    def _client(self, sql: str) -> str:
        parts = self.parts
        args = ["mysql", "-N", "-B", "-e", sql]
        if parts.hostname:
            args += ["-h", parts.hostname]
        if parts.port:
            args += ["-P", str(parts.port)]
        if parts.username:
            args += ["-u", unquote(parts.username)]
        env = {"MYSQL_PWD": unquote(parts.password)} if parts.password else {}
        return _run_client(args, env)

    def create(self, name: str) -> str:
        self.drop(name)
        self._client(f"CREATE DATABASE `{self._name(name)}` CHARACTER SET utf8mb4")
        return self.url_for(name)

    def drop(self, name: str) -> None:
        self._client(f"DROP DATABASE IF EXISTS `{self._name(name)}`")

    def version(self) -> str:
        return "MySQL/MariaDB " + self._client("SELECT VERSION()")


def server_for(url: str, python: str) -> Server:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SQLiteServer(url, python)
    if scheme in ("postgres", "postgresql"):
        return PostgreSQLServer(url)
    if scheme == "mysql":
        return MySQLServer(url)
    raise SystemExit(f"unsupported DATABASE_URL scheme {scheme!r}: use sqlite:///, postgres:// or mysql://")


@dataclass
class Timing:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Bench:
    python: str
    project: Path
    server: Server
    workdir: Path
    pythonpath: str | None = None  # an exported byhand commit's src/, ahead of the installed byhand
    migrate: list[float] = field(default_factory=list)
    byhand: list[float] = field(default_factory=list)
    sqlmigrate: list[float] = field(default_factory=list)
    sqlmigrate_failures: list[str] = field(default_factory=list)

    def manage(self, url: str, *args: str) -> Timing:
        """One whole ``manage.py`` process, timed from start to exit."""
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["DATABASE_URL"] = url
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.pythonpath, env.get("PYTHONPATH")]))
        command = [self.python, "manage.py", *args]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=self.project, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        return Timing(seconds, done.returncode, done.stdout, done.stderr)

    @staticmethod
    def _check(what: str, timing: Timing) -> None:
        if timing.returncode != 0:
            tail = "\n".join((timing.stderr or timing.stdout).strip().splitlines()[-25:])
            raise BenchmarkError(f"{what} exited with {timing.returncode}:\n{tail}")

    def plan(self) -> list[tuple[str, str]]:
        """Every migration migrate would apply to an empty database, in order (also warms .pyc files)."""
        with self.server.fresh("plan") as url:
            timing = self.manage(url, "showmigrations", "--plan")
        self._check("showmigrations --plan", timing)
        plan = [(m.group(1), m.group(2)) for m in map(_PLAN_LINE.match, timing.stdout.splitlines()) if m]
        if not plan:
            raise BenchmarkError("showmigrations --plan listed no migration")
        return plan

    def run_migrate(self, expected: int) -> float:
        with self.server.fresh("migrate") as url:
            timing = self.manage(url, "migrate")
        self._check("migrate", timing)
        applied = timing.stdout.count("  Applying ")
        if applied != expected:
            raise BenchmarkError(f"migrate applied {applied} migrations, the plan has {expected}")
        return timing.seconds

    def run_byhand(self, expected: int) -> float:
        runbook = self.workdir / "runbook.sql"
        runbook.unlink(missing_ok=True)
        with self.server.fresh("byhand") as url:
            timing = self.manage(url, "byhand", "sql", "--manual-steps", "-o", str(runbook))
        self._check("byhand sql", timing)
        if not runbook.exists() or runbook.stat().st_size == 0:
            raise BenchmarkError(f"byhand sql wrote no runbook: {timing.stderr!r}")
        wrote = _WROTE.search(timing.stderr)  # "Wrote FILE (N migrations)."
        if wrote and int(wrote.group(1)) != expected:
            raise BenchmarkError(f"byhand sql wrote {wrote.group(1)} migrations, the plan has {expected}")
        return timing.seconds

    def run_sqlmigrate(self, url: str, migrations: list[tuple[str, str]]) -> None:
        for app, name in migrations:
            timing = self.manage(url, "sqlmigrate", app, name)
            self.sqlmigrate.append(timing.seconds)
            if timing.returncode != 0:
                last = (timing.stderr.strip().splitlines() or ["?"])[-1]
                self.sqlmigrate_failures.append(f"{app}.{name}: {last}")


def sample_plan(plan: list[tuple[str, str]], size: int, seed: int) -> list[tuple[str, str]]:
    """One migration drawn from each of ``size`` equal slices of the plan (seeded)."""
    rng = random.Random(seed)
    size = min(size, len(plan))
    return [plan[rng.randrange(k * len(plan) // size, (k + 1) * len(plan) // size)] for k in range(size)]


def _versions(python: str, pythonpath: str | None) -> dict[str, str]:
    """Django, Python and byhand as the timed processes see them (same interpreter and path)."""
    code = (
        "import byhand, django, platform; print(django.get_version()); "
        "print(platform.python_version()); print(byhand.__version__); print(byhand.__file__)"
    )
    path = os.pathsep.join(filter(None, [pythonpath, os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path} if path else {}
    django_version, python_version, byhand_version, byhand_file = _run_client([python, "-c", code], env).splitlines()
    return {
        "django": django_version,
        "python": python_version,
        "byhand": f"byhand {byhand_version} from {_describe_source(Path(byhand_file).parent)}",
    }


def _describe_source(package: Path) -> str:
    """Where the timed byhand comes from: a commit, and whether its src/ has uncommitted changes."""
    exported = package.parent.parent / "COMMIT"
    if exported.exists():
        return f"commit {exported.read_text().strip()} (exported with git archive)"
    try:
        commit = _run_client(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], {})
        dirty = _run_client(["git", "-C", str(package), "status", "--porcelain", "--", "."], {})
    except (BenchmarkError, OSError):
        return str(package)
    return f"{package} at commit {commit}" + (" with uncommitted changes in src/byhand" if dirty else "")


def export_commit(revision: str, workdir: Path) -> str:
    """``git archive`` the repository's src/ at ``revision`` into ``workdir``; the path to put first."""
    repo = HERE.parent
    commit = _run_client(["git", "-C", str(repo), "rev-parse", "--short", f"{revision}^{{commit}}"], {})
    target = workdir / f"byhand-{commit}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    (target / "COMMIT").write_text(commit + "\n")
    return str(target / "src")


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f}"


def report(bench: Bench, plan_size: int, sample_size: int, context: dict[str, str]) -> str:
    migrate = statistics.median(bench.migrate)
    byhand = statistics.median(bench.byhand)
    per_process = statistics.mean(bench.sqlmigrate)
    loop = per_process * plan_size
    over_migrate = byhand / migrate
    over_byhand = loop / byhand
    # Each run of (b) follows a run of (a): their ratio cancels the machine's slow drifts.
    paired = [b / a for a, b in zip(bench.migrate, bench.byhand, strict=True)]
    over_migrate_paired = statistics.median(paired)

    def row(label: str, runs: str, values: list[float]) -> str:
        return f"| {label} | {runs} | {_fmt(statistics.median(values))} | {_fmt(min(values))} | {_fmt(max(values))} |"

    def verdict(met: bool) -> str:
        return "met" if met else "**not met**"

    lines = [
        f"### {context['vendor']}: {context['server']}, Django {context['django']}, Python {context['python']}",
        "",
        f"{plan_size} migrations in the plan (generated project {context['project']}); {context['byhand']}; "
        f"{context['machine']}, {context['nproc']} CPUs; {context['when']}; load average (1/5 min) "
        f"{context['load_before']} before, {_load()} after.",
        "",
        "| measurement | runs | median (s) | min (s) | max (s) |",
        "| --- | --- | ---: | ---: | ---: |",
        row("(a) `migrate`, empty database", str(len(bench.migrate)), bench.migrate),
        row("(b) `byhand sql --manual-steps -o FILE`, empty database", str(len(bench.byhand)), bench.byhand),
        row("(c) `sqlmigrate APP NAME`, one process", f"{len(bench.sqlmigrate)} sampled", bench.sqlmigrate),
        f"| (c) `sqlmigrate` loop over all {plan_size} migrations, **extrapolated** "
        f"(mean {per_process:.3f} s x {plan_size}) | from {sample_size} | {_fmt(loop)} | | |",
        "",
        "| ratio | value | goal | |",
        "| --- | ---: | --- | --- |",
        f"| byhand / migrate (medians) | {over_migrate:.2f} | <= {GOAL_BYHAND_OVER_MIGRATE} | "
        f"{verdict(over_migrate <= GOAL_BYHAND_OVER_MIGRATE)} |",
        f"| byhand / migrate (median of each run's pair: {', '.join(f'{r:.2f}' for r in paired)}) | "
        f"{over_migrate_paired:.2f} | <= {GOAL_BYHAND_OVER_MIGRATE} | "
        f"{verdict(over_migrate_paired <= GOAL_BYHAND_OVER_MIGRATE)} |",
        f"| sqlmigrate loop (extrapolated) / byhand (median) | {over_byhand:.1f} | >= {GOAL_LOOP_OVER_BYHAND:g} | "
        f"{verdict(over_byhand >= GOAL_LOOP_OVER_BYHAND)} |",
        "",
        f"(c) is a seeded sample of {sample_size} of the {plan_size} migrations, one drawn from each of "
        f"{sample_size} equal slices of the plan, run against an empty database; the loop's time is "
        "extrapolated as the sample's mean times the plan size, not measured.",
    ]
    if bench.sqlmigrate_failures:
        lines += [
            "",
            f"{len(bench.sqlmigrate_failures)} of the {len(bench.sqlmigrate)} sampled sqlmigrate processes "
            "failed (they read the database, which does not have the schema yet); their time is counted:",
            "",
            *(f"- `{failure}`" for failure in bench.sqlmigrate_failures),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=None,
        help="vendor and server to use: sqlite:///DIR/NAME.sqlite3 (default: a temporary directory), "
        "postgres://USER@HOST:PORT/NAME or mysql://USER@HOST:PORT/NAME; fresh databases are "
        "named NAME_<step> and dropped afterwards",
    )
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter with Django and byhand (default: this one)"
    )
    parser.add_argument(
        "--project", type=Path, default=DEFAULT_PROJECT, help="generated project (default: %(default)s)"
    )
    parser.add_argument(
        "--generate", action="store_true", help="(re)write the project with generate.py's defaults first"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of (a) and of (b) (default: %(default)s)")
    parser.add_argument("--sample", type=int, default=40, help="sqlmigrate processes to time (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sqlmigrate sample (default: %(default)s)")
    parser.add_argument(
        "--byhand-commit",
        metavar="REV",
        help="time byhand as committed at REV (git archive of src/ put first on PYTHONPATH) "
        "instead of the installed one, e.g. to keep others' uncommitted edits out",
    )
    parser.add_argument("--markdown", type=Path, help="also append the report to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.sample < 1:
        parser.error("--repeat and --sample must be at least 1")

    project: Path = args.project.resolve()
    if args.generate or not (project / "manage.py").exists():
        subprocess.run([args.python, str(HERE / "generate.py"), str(project)], check=True)

    workdir = Path(tempfile.mkdtemp(prefix="byhand_bench_"))
    try:
        text = measure(args, project, workdir)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(text, end="")
    if args.markdown:
        with args.markdown.open("a", encoding="utf-8") as stream:
            stream.write(text + "\n")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(args: argparse.Namespace, project: Path, workdir: Path) -> str:
    """Run the whole benchmark in ``workdir`` and return its markdown report."""
    server = server_for(args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}", args.python)
    pythonpath = export_commit(args.byhand_commit, workdir) if args.byhand_commit else None
    bench = Bench(python=args.python, project=project, server=server, workdir=workdir, pythonpath=pythonpath)
    context = {
        "load_before": _load(),
        **_versions(args.python, pythonpath),
        "vendor": server.vendor,
        "server": server.version(),
        "nproc": str(os.cpu_count()),
        "project": str(project.relative_to(HERE.parent) if project.is_relative_to(HERE.parent) else project),
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    plan = bench.plan()
    sample = sample_plan(plan, args.sample, args.seed)
    _say(f"{server.vendor}: {len(plan)} migrations; warm-up (untimed) ...")
    bench.run_migrate(len(plan))
    bench.run_byhand(len(plan))
    chunks = [sample[i :: args.repeat] for i in range(args.repeat)]
    with server.fresh("sqlmigrate") as sqlmigrate_url:
        for i in range(args.repeat):
            bench.migrate.append(bench.run_migrate(len(plan)))
            bench.byhand.append(bench.run_byhand(len(plan)))
            bench.run_sqlmigrate(sqlmigrate_url, chunks[i])
            _say(
                f"  run {i + 1}/{args.repeat}: migrate {_fmt(bench.migrate[-1])} s, "
                f"byhand {_fmt(bench.byhand[-1])} s, {len(bench.sqlmigrate)} sqlmigrate processes so far"
            )
    return report(bench, len(plan), len(sample), context)


if __name__ == "__main__":
    sys.exit(main())
