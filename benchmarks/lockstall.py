#!/usr/bin/env python
"""Lock stall, side by side: an application's query latency while a migration waits behind a transaction.

    python benchmarks/lockstall.py [--database-url URL ...] [--rounds 3] [--rate 200] [--threads 4]
                                   [--blocker-seconds 5.5] [--lock-timeout 100ms] [--rows 1000000] [--json-out FILE]

For each --database-url (PostgreSQL and MariaDB by default), the database named in
the URL is created afresh, the project in benchmarks/lockstall/ is migrated to
inventory.0001 and its table filled with --rows rows. Then, for each contender:

    t = 0      the load starts: --rate primary-key SELECTs per second, open loop
               (query k is due at t0 + k/rate; its latency counts from then, so a
               late worker's lateness is in it), on --threads connections;
    t = 1 s    a blocker session reads one row in a transaction and stays idle in
               it for --blocker-seconds (a share lock, or a shared metadata lock);
    t = 1.5 s  migration inventory.0002 (AddField, nullable) starts;
    end        1 s after the migration has finished and the blocker has ended.

The contenders are ``baseline`` (the blocker alone), ``migrate`` (``manage.py migrate
inventory 0002``) and ``byhand apply`` (``byhand apply RUNBOOK --json``, the runbook
written by ``manage.py byhand sql inventory 0002`` before the window, with
--lock-timeout; MariaDB rounds it down to whole seconds). Between contenders the
database goes back to 0001, outside the window. The contenders run interleaved,
--rounds times; the report gives medians over the rounds and checks the goals:
PostgreSQL, max latency during byhand apply <= 1.5 x lock_timeout; MariaDB, no
query during byhand apply slower than twice the baseline's max.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from benchlib import (
    BenchmarkError,
    Database,
    Run,
    apply_command,
    byhand_events,
    describe_context,
    manage_env,
    markdown_table,
    percentile,
    run_timed,
    say,
)

__all__ = ["main"]

PROJECT = Path(__file__).resolve().parent / "lockstall"
APP, TARGET, INITIAL = "inventory", "0002_item_note", "0001"
TABLE, COLUMN = "inventory_item", "note"
DEFAULT_URLS = ["postgres://postgres@127.0.0.1:5432/byhand_lockstall", "mysql://root@127.0.0.1:3306/byhand_lockstall"]
CONTENDERS = ("baseline", "migrate", "byhand apply")
BLOCKER_AT, MIGRATION_AT, TAIL = 1.0, 1.5, 1.0  # seconds after the load starts; after both ended
MIGRATION_TIMEOUT = 60.0
SELECT = f"SELECT id, sku, quantity FROM {TABLE} WHERE id = %s"
_SCHEMA = {"postgresql": "current_schema()", "mysql": "DATABASE()"}
_FILL = {
    "postgresql": [
        f"INSERT INTO {TABLE} (id, sku, quantity) SELECT g, 'sku-' || g, g % 1000 FROM generate_series(1, {{rows}}) g",
        f"VACUUM ANALYZE {TABLE}",
    ],
    "mysql": [
        f"INSERT INTO {TABLE} (id, sku, quantity) SELECT seq, CONCAT('sku-', seq), seq % 1000 FROM seq_1_to_{{rows}}",
        f"ANALYZE TABLE {TABLE}",
    ],
}


class Duration(NamedTuple):
    text: str  # as given, passed on to byhand apply
    seconds: float


@dataclass(frozen=True)
class Scenario:
    rows: int
    rate: float
    threads: int
    blocker_seconds: float
    lock_timeout: Duration


@dataclass
class Outcome:
    """One contender's run: every query's latency (seconds, from its scheduled start) and the migration's fate."""

    contender: str
    round: int
    latencies: list[float] = field(repr=False)
    slowest_at: float  # when the slowest query was due, seconds after the load started
    errors: list[str]  # the load's failed queries
    migration_seconds: float | None = None
    attempts: int | None = None
    failure: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)  # byhand apply --json

    def summary(self) -> dict[str, Any]:
        ms = [1000 * latency for latency in self.latencies]
        return {
            "p50_ms": percentile(ms, 0.50),
            "p99_ms": percentile(ms, 0.99),
            "max_ms": percentile(ms, 1.0),
            "over_100ms": sum(m > 100 for m in ms),
            "over_1s": sum(m > 1000 for m in ms),
            "queries": len(ms),
            "errors": len(self.errors),
            "migration_s": self.migration_seconds,
            "attempts": self.attempts,
            "slowest_at_s": self.slowest_at,
        }


class LoadGenerator:
    """Open-loop primary-key SELECTs: query k is due at t0 + k/rate, taken by whichever worker is free."""

    def __init__(self, database: Database, *, rate: float, threads: int, rows: int) -> None:
        self._database, self._rate, self._rows = database, rate, rows
        self._connections = [database.connect() for _ in range(threads)]
        self._lock = threading.Lock()
        self._next = 0
        self._t0 = 0.0
        self._stop_at = float("inf")
        self._threads: list[threading.Thread] = []
        self.samples: list[tuple[float, float]] = []  # (due, seconds after t0; latency)
        self.errors: list[str] = []

    def start(self, t0: float) -> None:
        self._t0 = t0
        for seed, connection in enumerate(self._connections):
            thread = threading.Thread(target=self._work, args=(connection, random.Random(seed)), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, at: float) -> None:
        """Take no query due at ``at`` or later; wait for the workers and close their connections."""
        self._stop_at = at
        for thread in self._threads:
            thread.join()
        for connection in self._connections:
            connection.close()

    def _take(self) -> float | None:
        with self._lock:
            due = self._t0 + self._next / self._rate
            if due >= self._stop_at:
                return None
            self._next += 1
            return due

    def _work(self, connection: Any, rng: random.Random) -> None:
        cursor = connection.cursor()
        while (due := self._take()) is not None:
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                cursor.execute(SELECT, (rng.randint(1, self._rows),))
                cursor.fetchall()
            except self._database.error as exc:
                self.errors.append(str(exc))
                continue
            self.samples.append((due - self._t0, time.perf_counter() - due))


class Blocker:
    """A session that reads one row in a transaction and stays idle in it (share lock / shared metadata lock)."""

    def __init__(self, database: Database, *, seconds: float) -> None:
        self._database = database
        self._connection = database.connect()
        self._thread = threading.Thread(target=self._hold, args=(seconds,), daemon=True)
        self._error: Exception | None = None

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        self._connection.close()
        if self._error is not None:
            raise BenchmarkError(f"the blocker session failed: {self._error}")

    def _hold(self, seconds: float) -> None:
        cursor = self._connection.cursor()
        try:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT id FROM {TABLE} WHERE id = 1")
            cursor.fetchall()
            time.sleep(seconds)
            cursor.execute("ROLLBACK")
        except self._database.error as exc:
            self._error = exc


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.perf_counter()))


class Stage:
    """One vendor's database, its loaded table, and the contenders run against it."""

    def __init__(self, database: Database, scenario: Scenario, workdir: Path) -> None:
        self.database, self.scenario = database, scenario
        self.runbook = workdir / f"{database.vendor}.0002.sql"

    def manage(self, *args: str) -> Run:
        command = [sys.executable, "manage.py", *args]
        return run_timed(command, cwd=PROJECT, env=manage_env(self.database.url), timeout=MIGRATION_TIMEOUT)

    def prepare(self) -> None:
        """The database afresh, at inventory.0001, its table filled."""
        self.database.recreate()
        self.manage("migrate", APP, INITIAL).check("migrate to 0001")
        for sql in _FILL[self.database.vendor]:
            self.database.execute(sql.format(rows=self.scenario.rows))

    def run(self, contender: str, index: int) -> Outcome:
        """One timed window (the database is put back to 0001 first, outside it)."""
        self.reset()
        command = self._command(contender)
        scenario = self.scenario
        load = LoadGenerator(self.database, rate=scenario.rate, threads=scenario.threads, rows=scenario.rows)
        blocker = Blocker(self.database, seconds=scenario.blocker_seconds)
        t0 = time.perf_counter() + 0.2
        load.start(t0)
        _sleep_until(t0 + BLOCKER_AT)
        blocker.start()
        migration = None
        if command is not None:
            _sleep_until(t0 + MIGRATION_AT)
            migration = run_timed(command, cwd=PROJECT, env=manage_env(self.database.url), timeout=MIGRATION_TIMEOUT)
        blocker.join()
        load.stop(time.perf_counter() + TAIL)
        slowest = max(load.samples, key=lambda sample: sample[1], default=(0.0, 0.0))
        outcome = Outcome(contender, index, [s[1] for s in load.samples], slowest_at=slowest[0], errors=load.errors)
        if migration is not None:
            self._judge(outcome, migration)
        return outcome

    def reset(self) -> None:
        """Back to inventory.0001, whatever a failed contender left (column added, or recorded, or both)."""
        added, recorded = self._state()
        if added and recorded:
            self.manage("migrate", APP, INITIAL).check("migrate back to 0001")
        elif added:
            self.database.execute(f"ALTER TABLE {TABLE} DROP COLUMN {COLUMN}")
        elif recorded:
            self.database.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", (APP, TARGET))

    def _command(self, contender: str) -> list[str] | None:
        if contender == "baseline":
            return None
        if contender == "migrate":
            return [sys.executable, "manage.py", "migrate", APP, TARGET]
        self.runbook.unlink(missing_ok=True)
        self.manage("byhand", "sql", APP, TARGET, "-o", str(self.runbook)).check("byhand sql")
        return apply_command(
            self.runbook, self.database.url, "--json", "--lock-timeout", self.scenario.lock_timeout.text
        )

    def _judge(self, outcome: Outcome, migration: Run) -> None:
        outcome.migration_seconds = migration.seconds
        if outcome.contender == "byhand apply":
            outcome.events = byhand_events(migration.stdout)
            done = [e for e in outcome.events if e["event"] == "migration-done"]
            outcome.attempts = done[-1].get("attempts") if done else None
        if not migration.ok:
            outcome.failure = f"exited with {migration.returncode}: {migration.tail(1)}"
        elif self._state() != (True, True):
            outcome.failure = f"exited with 0 but {APP}.{TARGET} is not applied and recorded"

    def _state(self) -> tuple[bool, bool]:
        """Whether the column of 0002 exists, and whether 0002 is recorded."""
        column = self.database.scalar(
            f"SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = {_SCHEMA[self.database.vendor]} "
            "AND table_name = %s AND column_name = %s",
            (TABLE, COLUMN),
        )
        recorded = self.database.scalar(
            "SELECT COUNT(*) FROM django_migrations WHERE app = %s AND name = %s", (APP, TARGET)
        )
        return bool(column), bool(recorded)


@dataclass
class VendorResult:
    database: Database
    server: str
    outcomes: list[Outcome]

    def of(self, contender: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.contender == contender]


def measure(database: Database, scenario: Scenario, *, rounds: int, workdir: Path, keep: bool) -> VendorResult:
    """Prepare one vendor's database and run every contender ``rounds`` times, interleaved."""
    result = VendorResult(database, database.server_version(), [])
    say(f"{database.vendor}: creating {database.name}, migrating to {INITIAL}, loading {scenario.rows:,} rows ...")
    stage = Stage(database, scenario, workdir)
    try:
        started = time.perf_counter()
        stage.prepare()
        say(f"  ready in {time.perf_counter() - started:.1f} s")
        for index in range(1, rounds + 1):
            for contender in CONTENDERS:
                outcome = stage.run(contender, index)
                result.outcomes.append(outcome)
                say(f"  round {index}/{rounds} {contender:12} {_progress(outcome)}")
        stage.reset()
    finally:
        if not keep:
            database.drop()
    return result


def _progress(outcome: Outcome) -> str:
    s = outcome.summary()
    text = f"max {s['max_ms']:8.1f} ms, {s['over_100ms']:4} > 100 ms, {s['queries']} queries"
    if s["errors"]:
        text += f" ({s['errors']} failed: {outcome.errors[0]})"
    if s["migration_s"] is not None:
        text += f", migration {s['migration_s']:.2f} s"
    if s["attempts"] is not None:
        text += f", {s['attempts']} attempt(s)"
    return text + (f"; FAILED: {outcome.failure.splitlines()[0]}" if outcome.failure else "")


def _median(outcomes: list[Outcome], key: str) -> float | None:
    values = [outcome.summary()[key] for outcome in outcomes]
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _cell(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def report_vendor(result: VendorResult, scenario: Scenario, rounds: int) -> str:
    """The markdown table of medians for one vendor, failures, and the goal's PASS/FAIL line."""
    database = result.database
    timeout = f"--lock-timeout {scenario.lock_timeout.text}"
    if database.vendor == "mysql":
        timeout += " (MariaDB rounds it down to whole seconds: 0 is NOWAIT)"
    rows = []
    for contender in CONTENDERS:
        good = [o for o in result.of(contender) if o.failure is None]
        rows.append(
            [
                f"`{contender}`",
                f"{len(good)} of {rounds}",
                *(_cell(_median(good, key), 1) for key in ("p50_ms", "p99_ms", "max_ms")),
                *(_cell(_median(good, key), 0) for key in ("over_100ms", "over_1s", "queries")),
                _cell(_median(good, "migration_s"), 2),
                _cell(_median(good, "attempts"), 0),
            ]
        )
    header = ["contender", "rounds", "p50 (ms)", "p99 (ms)", "max (ms)", "> 100 ms", "> 1 s", "queries"]
    lines = [
        f"### {database.vendor}: {result.server}",
        "",
        f"{scenario.rows:,} rows; {scenario.rate:g} queries/s on {scenario.threads} connections; blocker idle in "
        f"transaction {scenario.blocker_seconds:g} s from t = {BLOCKER_AT:g} s; migration from t = {MIGRATION_AT:g} s; "
        f"byhand apply with {timeout}. Medians over the rounds that succeeded; latency from each query's "
        "scheduled start; migration = the whole process, start-up included.",
        "",
        markdown_table([*header, "migration (s)", "attempts"], rows, align="llrrrrrrrr"),
    ]
    for outcome in result.outcomes:
        if outcome.failure:
            lines.append(f"- round {outcome.round}, `{outcome.contender}` failed: {outcome.failure}")
        if outcome.errors:
            lines.append(f"- round {outcome.round}, `{outcome.contender}`: {len(outcome.errors)} load queries failed")
    if lines[-1].startswith("- "):
        lines.append("")
    return "\n".join([*lines, goal_line(result, scenario)]) + "\n"


def goal_line(result: VendorResult, scenario: Scenario) -> str:
    """PASS or FAIL for the vendor's goal, on the median over rounds of byhand apply's slowest query."""
    vendor = result.database.vendor
    if vendor == "postgresql":
        limit = 1.5 * scenario.lock_timeout.seconds * 1000
        goal = f"max latency during byhand apply <= 1.5 x lock_timeout = {limit:.0f} ms"
    else:
        baseline = _median(result.of("baseline"), "max_ms") or 0.0
        limit = 2 * baseline
        goal = f"no query during byhand apply slower than 2 x baseline's max = {limit:.1f} ms"
    byhand = result.of("byhand apply")
    failed = [o for o in byhand if o.failure]
    if failed:
        return f"FAIL {vendor}: {goal}: byhand apply failed in {len(failed)} of {len(byhand)} rounds (above)."
    maxima = [o.summary()["max_ms"] for o in byhand]
    verdict = "PASS" if statistics.median(maxima) <= limit else "FAIL"
    return (
        f"{verdict} {vendor}: {goal}: {statistics.median(maxima):.1f} ms "
        f"(median of the rounds' max; worst round {max(maxima):.1f} ms)."
    )


def write_json(path: Path, results: list[VendorResult], scenario: Scenario, context: str) -> None:
    """Raw numbers: each round's summary and every query's latency (ms)."""
    data = {
        "context": context,
        "scenario": {**asdict(scenario), "lock_timeout": scenario.lock_timeout.text},
        "vendors": [
            {
                "vendor": result.database.vendor,
                "server": result.server,
                "rounds": [
                    {
                        "contender": o.contender,
                        "round": o.round,
                        "failure": o.failure,
                        **o.summary(),
                        "latencies_ms": [round(1000 * latency, 3) for latency in o.latencies],
                        "events": o.events,
                    }
                    for o in result.outcomes
                ],
            }
            for result in results
        ],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _duration(text: str) -> Duration:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 100ms or 2s")
    value = float(match.group(1))
    return Duration(text.strip(), value / 1000 if match.group(2) == "ms" else value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="postgres://... or mysql://...; the database is dropped and created; repeat for several vendors "
        f"(default: {' and '.join(DEFAULT_URLS)})",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the contenders (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=200.0, help="queries per second (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=4, help="connections of the load (default: %(default)s)")
    parser.add_argument(
        "--blocker-seconds", type=float, default=5.5, help="how long the blocker stays (default: %(default)s)"
    )
    parser.add_argument(
        "--lock-timeout",
        type=_duration,
        default=_duration("100ms"),
        help="passed to byhand apply; PostgreSQL's goal is 1.5 times it (default: 100ms)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the raw numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards (default: drop them)")
    args = parser.parse_args(argv)
    if min(args.rounds, args.rows, args.threads) < 1 or args.rate <= 0:
        parser.error("--rounds, --rows, --threads and --rate must be positive")
    databases = [Database.from_url(url) for url in args.database_url or DEFAULT_URLS]
    if any(database.vendor == "sqlite" for database in databases):
        parser.error("SQLite has no lock timeout to measure: use postgres:// or mysql://")
    scenario = Scenario(args.rows, args.rate, args.threads, args.blocker_seconds, args.lock_timeout)

    context = describe_context()
    workdir = Path(tempfile.mkdtemp(prefix="byhand_lockstall_"))
    try:
        results = [
            measure(database, scenario, rounds=args.rounds, workdir=workdir, keep=args.keep) for database in databases
        ]
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"## Lock stall, {args.rounds} rounds\n\n{context}\n")
    print("\n".join(report_vendor(result, scenario, args.rounds) for result in results), end="")
    if args.json_out:
        write_json(args.json_out, results, scenario, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
