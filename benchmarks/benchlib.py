"""What lockstall.py and apply_overhead.py share: databases from URLs, timed processes, byhand apply, reports.

The scripts run every process with the interpreter that runs them (Django and byhand
installed), and ``byhand apply`` with the console script beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import BenchmarkError

__all__ = [
    "BenchmarkError",
    "Database",
    "Run",
    "add_load_arguments",
    "add_subset_argument",
    "apply_command",
    "byhand_events",
    "describe_context",
    "manage_env",
    "markdown_table",
    "parse_load_arguments",
    "percentile",
    "run_timed",
    "runbook_body",
    "say",
    "scratch",
]

_VENDORS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}


@dataclass(frozen=True)
class Database:
    """One database named by a URL: postgres://, mysql://, sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH."""

    url: str
    vendor: str
    name: str  # the database, or the SQLite file's path
    host: str
    port: int | None
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> Database:
        parts = urlsplit(url)
        if parts.scheme not in _VENDORS:
            raise SystemExit(f"unsupported URL scheme {parts.scheme!r}: use postgres://, mysql:// or sqlite:///")
        return cls(
            url=url,
            vendor=_VENDORS[parts.scheme],
            name=unquote(parts.path[1:] if parts.scheme == "sqlite" else parts.path.lstrip("/")),
            host=parts.hostname or "",
            port=parts.port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    @property
    def error(self) -> type[Exception]:
        """The driver's base exception class."""
        if self.vendor == "postgresql":
            import psycopg

            return psycopg.Error
        if self.vendor == "mysql":
            import MySQLdb

            return MySQLdb.Error  # type: ignore[no-any-return]
        return sqlite3.Error

    def connect(self, *, server_only: bool = False) -> Any:
        """A DB-API connection in autocommit mode (to the server alone with ``server_only``)."""
        if self.vendor == "postgresql":
            import psycopg

            dbname = "postgres" if server_only else self.name
            return psycopg.connect(
                host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, autocommit=True
            )
        if self.vendor == "mysql":
            import MySQLdb

            database = {} if server_only else {"database": self.name}
            return MySQLdb.connect(
                host=self.host,
                port=self.port or 3306,
                user=self.user,
                password=self.password,
                autocommit=True,
                **database,
            )
        return sqlite3.connect(self.name, isolation_level=None)

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on a connection of its own; the rows it returned, if any."""
        connection = self.connect()
        try:
            cursor = connection.cursor()
            if params:
                cursor.execute(sql, tuple(params))
            else:  # no placeholders parsed: a literal % stays one
                cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def scalar(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first column of the first row of one query."""
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def recreate(self) -> None:
        """Drop the database if it exists and create it empty."""
        self.drop()
        if self.vendor != "sqlite":
            create = {"postgresql": 'CREATE DATABASE "{}"', "mysql": "CREATE DATABASE `{}` CHARACTER SET utf8mb4"}
            self._on_server(create[self.vendor].format(self.name))

    def drop(self) -> None:
        if self.vendor == "sqlite":
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(self.name + suffix).unlink(missing_ok=True)
            return
        drop = {"postgresql": 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)', "mysql": "DROP DATABASE IF EXISTS `{}`"}
        self._on_server(drop[self.vendor].format(self.name))

    def server_version(self) -> str:
        if self.vendor == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        connection = self.connect(server_only=True)
        try:
            cursor = connection.cursor()
            if self.vendor == "postgresql":
                cursor.execute("SHOW server_version")
                return f"PostgreSQL {cursor.fetchone()[0]}"
            # What a copy's or a build's stalls were found to depend on (benchmarks/RESULTS.md).
            cursor.execute("SELECT VERSION(), @@innodb_buffer_pool_size, @@innodb_log_file_size")
            version, pool, redo = cursor.fetchone()
        finally:
            connection.close()
        name = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        return f"{name} {version} (buffer pool {int(pool) >> 20} MB, redo log {int(redo) >> 20} MB)"

    def _on_server(self, sql: str) -> None:
        connection = self.connect(server_only=True)
        try:
            connection.cursor().execute(sql)
        finally:
            connection.close()


@dataclass
class Run:
    """One finished process: wall-clock seconds from start to exit, status and output."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> str:
        """The last lines of its error output (or of its output), for a message."""
        return "\n".join((self.stderr or self.stdout).strip().splitlines()[-lines:])

    def check(self, what: str) -> None:
        """BenchmarkError, naming ``what`` ran, unless it exited 0."""
        if not self.ok:
            raise BenchmarkError(f"{what} exited with {self.returncode}:\n{self.tail()}")


def add_load_arguments(parser: argparse.ArgumentParser, *, rows: int, rounds: int) -> None:
    """--rows, --rounds and the open-loop load's --read-rate, --update-rate and --threads, with
    --json-out and --keep (online_load.py, mariadb_build.py, mariadb_copy.py); parse with parse_load_arguments."""
    parser.add_argument("--rows", type=int, default=rows, help="rows in the big table (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds (default: %(default)s)")
    parser.add_argument("--read-rate", type=float, default=150.0, help="SELECTs per second (default: %(default)s)")
    parser.add_argument("--update-rate", type=float, default=50.0, help="UPDATEs per second (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=8, help="connections of the load (default: %(default)s)")
    parser.add_argument("--json-out", type=Path, help="also write the raw numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (default: drop it)")


def parse_load_arguments(parser: argparse.ArgumentParser, argv: list[str] | None, *, vendor: str) -> argparse.Namespace:
    """The parsed arguments, checked: what add_load_arguments added, positive; --database-url of ``vendor``."""
    args = parser.parse_args(argv)
    if min(args.rounds, args.rows, args.threads) < 1 or min(args.read_rate, args.update_rate) <= 0:
        parser.error("--rounds, --rows, --threads and the rates must be positive")
    if Database.from_url(args.database_url).vendor != vendor:
        scheme = {"postgresql": "postgres://", "mysql": "mysql://"}[vendor]
        parser.error(f"this benchmark runs on {vendor} only: use {scheme}")
    return args


def add_subset_argument(parser: argparse.ArgumentParser, option: str, choices: Sequence[str]) -> None:
    """``option`` (e.g. --operations): a comma-separated subset of ``choices``, in order; a list, all by default."""
    what = option.lstrip("-")

    def chosen(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        if unknown := set(names) - set(choices):
            raise argparse.ArgumentTypeError(f"unknown {what} {sorted(unknown)}: use {', '.join(choices)}")
        return names

    parser.add_argument(option, type=chosen, default=list(choices), help="comma-separated subset, in order")


@contextmanager
def scratch(database: Database, *, keep: bool, prefix: str) -> Iterator[Path]:
    """A temporary directory (for runbooks), removed at the end, when ``database`` is
    dropped too unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not keep:
            database.drop()


def run_timed(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    timeout: float | None = None,
) -> Run:
    """Run one process to its end and time it; a process past ``timeout`` is killed (status -9)."""
    source = stdin.open("rb") if stdin is not None else None
    start = time.perf_counter()
    try:
        done = subprocess.run(
            list(args), check=False, cwd=cwd, env=env, stdin=source, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        output = [part.decode() if isinstance(part, bytes) else part or "" for part in (exc.stdout, exc.stderr)]
        return Run(time.perf_counter() - start, -9, output[0], output[1] + f"\nkilled after {timeout:g} s")
    finally:
        if source is not None:
            source.close()
    return Run(time.perf_counter() - start, done.returncode, done.stdout, done.stderr)


def runbook_body(runbook: Path, *, without_observed: bool = False) -> str:
    """The runbook without its header and checksum (they hold the time it was written);
    ``without_observed``: nor what the rehearsal saw each statement do (its comment line and
    its marker's "observed"), to compare the SQL with a commit that did not observe it."""
    lines = runbook.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(('-- byhand: {"direction"', "-- byhand checksum:"))]
    if without_observed:
        kept = [_without_observed(line) for line in kept if not line.startswith("-- observed: ")]
    return "\n".join(kept)


def _without_observed(line: str) -> str:
    if not line.startswith('-- byhand: {"step"'):
        return line
    marker = json.loads(line[len("-- byhand: ") :])
    marker.pop("observed", None)
    return "-- byhand: " + json.dumps(marker, ensure_ascii=False, separators=(", ", ": "))


def manage_env(url: str) -> dict[str, str]:
    """The environment of a ``manage.py`` process: this one's, with DATABASE_URL set."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = url
    return env


def apply_command(runbook: Path, url: str, *options: str) -> list[str]:
    """``byhand apply RUNBOOK --database-url URL OPTIONS...``, with the console script beside this interpreter."""
    script = Path(sys.executable).parent / "byhand"
    return [str(script), "apply", str(runbook), "--database-url", url, *options]


def byhand_events(stdout: str) -> list[dict[str, Any]]:
    """The events of ``byhand apply --json``: one JSON object per line, each with an "event" key."""
    events = []
    for line in stdout.splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "event" in data:
            events.append(data)
    return events


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.99 for p99); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, align: str) -> str:
    """A markdown table; ``align`` has one letter per column, "l" or "r"."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def describe_context() -> str:
    """One line: Django, Python and byhand as the timed processes see them, the machine and its load."""
    code = "import byhand, django; print(django.get_version(), byhand.__version__, byhand.__file__)"
    versions = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    django_version, byhand_version, byhand_file = versions.split()
    one, five, _fifteen = os.getloadavg()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Django {django_version}, Python {platform.python_version()}, byhand {byhand_version} "
        f"({Path(byhand_file).parent}); {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{when}; load average (1/5 min) {one:.2f}/{five:.2f}."
    )


def say(message: str) -> None:
    """Progress, on standard error (the report goes to standard output)."""
    print(message, file=sys.stderr, flush=True)
