#!/usr/bin/env python
"""Time ``manage.py byhand verify`` against ``manage.py migrate`` on the generated project.

    python benchmarks/verify_time.py [--database-url URL ...] [--rounds 3] [--project DIR]

Per vendor (SQLite in a temporary directory by default; for PostgreSQL and MariaDB the
URL's database is a name prefix, as for run.py), one untimed warm-up and then --rounds
timed rounds, each on a fresh empty database: ``migrate`` (every migration of the plan),
then ``byhand verify`` of that migrated database (which migrates a scratch database to
the recorded set and compares). verify must exit 0 (no drift). The report gives medians
and verify/migrate per vendor, against the goal: at most 1.5.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from apply_overhead import _absolute
from benchlib import BenchmarkError, describe_context, markdown_table, say
from run import DEFAULT_PROJECT, HERE, Bench, server_for

__all__ = ["main"]

GOAL_VERIFY_OVER_MIGRATE = 1.5


def measure(bench: Bench, rounds: int) -> tuple[int, list[float], list[float]]:
    """The plan's size and the timed seconds of migrate and of verify, ``rounds`` each after a warm-up."""
    size = len(bench.plan())
    migrate_times: list[float] = []
    verify_times: list[float] = []
    for number in range(rounds + 1):
        with bench.server.fresh("verify") as url:
            migrated = bench.manage(url, "migrate")
            bench._check("migrate", migrated)
            if migrated.stdout.count("  Applying ") != size:
                raise BenchmarkError(f"migrate did not apply the {size} migrations of the plan")
            verified = bench.manage(url, "byhand", "verify")
            bench._check("byhand verify", verified)
        if number:  # the first pair is the warm-up
            migrate_times.append(migrated.seconds)
            verify_times.append(verified.seconds)
            say(f"  round {number}/{rounds}: migrate {migrated.seconds:.2f} s, byhand verify {verified.seconds:.2f} s")
    return size, migrate_times, verify_times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", action="append", help="repeat for several vendors (default: SQLite)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default: %(default)s)")
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT, help="generated project")
    args = parser.parse_args(argv)
    project: Path = args.project.resolve()
    if not (project / "manage.py").exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(project)], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="byhand_verify_"))
    urls = args.database_url or [f"sqlite:///{workdir / 'verify.sqlite3'}"]
    rows, verdicts = [], []
    try:
        for number, url in enumerate(urls):
            server = server_for(_absolute(url), sys.executable)
            vendor_dir = workdir / str(number)
            vendor_dir.mkdir()
            bench = Bench(python=sys.executable, project=project, server=server, workdir=vendor_dir)
            say(f"{server.vendor}:")
            size, migrate_times, verify_times = measure(bench, args.rounds)
            ratio = statistics.median(verify_times) / statistics.median(migrate_times)
            rows.append(
                [
                    server.version(),
                    str(size),
                    f"{statistics.median(migrate_times):.2f}",
                    f"{statistics.median(verify_times):.2f}",
                    f"{ratio:.2f}",
                ]
            )
            verdict = "PASS" if ratio <= GOAL_VERIFY_OVER_MIGRATE else "FAIL"
            verdicts.append(f"{verdict} {server.vendor}: verify / migrate <= {GOAL_VERIFY_OVER_MIGRATE}: {ratio:.2f}.")
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    header = ["server", "migrations", "migrate, median s", "byhand verify, median s", "verify / migrate"]
    print(f"## byhand verify vs migrate, {args.rounds} rounds\n\n{describe_context()}\n")
    print(markdown_table(header, rows, align="lrrrr"))
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
