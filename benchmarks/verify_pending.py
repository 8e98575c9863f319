#!/usr/bin/env python
"""Time ``byhand verify`` with tens of pending migrations on real apps (issue 22, item 3).

    python benchmarks/verify_pending.py --python .venv-realworld52/bin/python \
        [--database-url URL ...] [--rounds 3] [--baseline-src DIR] [--drift]

The project is tests/realworld (wagtail, django-cms, allauth, oauth-toolkit, ... 318
migrations; install it with ``scripts/realworld.sh 5.2``). Per vendor, on one database:
``migrate`` everything, then per round (untimed) ``migrate`` some apps backwards (the
BACKWARDS below), then timed side by side: ``byhand verify`` with
this checkout's src, with --baseline-src's (another commit's src folder, if given), and
``migrate`` of the pending plan (which applies them, ready for the next round); the
first ``migrate`` (every migration, from empty) is timed too, once. verify
must not fail, and must report exactly what the baseline reports (Django's own backwards
leaves some indexes under other names: issue 18, item 5). The report gives medians and verify / migrate (issue 22's
goal: at most 1.5). For PostgreSQL and MariaDB the URL names a database this makes and drops.

Without drift, verify needs no pending migration to explain a difference, and applies none
on its scratch copy. With --drift, an index no migration makes is added by hand to a
recorded table before verify (and dropped before ``migrate``): verify then applies every
pending migration on its scratch copy looking for one that makes it, its worst case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: What goes backwards each round: apps whose migrations go back and forth cleanly
#: (wagtailcore's data migrations do not run forwards twice on the same rows).
BACKWARDS = [
    ("wagtailsearch", "zero"),
    ("wagtailforms", "zero"),
    ("wagtailredirects", "zero"),
    ("wagtailusers", "zero"),
    ("wagtailembeds", "zero"),
    ("socialaccount", "zero"),
    ("account", "zero"),
    ("mfa", "zero"),
    ("oauth2_provider", "zero"),
    ("django_celery_beat", "zero"),
    ("django_celery_results", "zero"),
    ("reversion", "zero"),
    ("guardian", "zero"),
    ("filer", "zero"),
    ("easy_thumbnails", "zero"),
]
GOAL = 1.5
#: --drift: an index no migration makes, on a table the BACKWARDS leave in place.
DRIFT_INDEX = "byhand_bench_drift_idx"
DRIFT_TABLE, DRIFT_COLUMN = "wagtailcore_page", "title"


def run(python: str, src: Path, url: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "realworld.settings",
        "PYTHONPATH": f"{src}{os.pathsep}{ROOT / 'tests'}",
    }
    start = time.monotonic()
    done = subprocess.run([python, "-m", "django", *args], env=env, capture_output=True, text=True, check=False)
    return time.monotonic() - start, done


def checked(what: str, result: tuple[float, subprocess.CompletedProcess[str]]) -> float:
    seconds, done = result
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def server(url: str, sql: str, *, database: str = "") -> None:
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        command = ["psql", "-h", parts.hostname or "127.0.0.1", "-U", parts.username or "postgres", "-qc", sql]
        command += ["-d", database] if database else []
    else:
        command = ["mariadb", "-h", parts.hostname or "127.0.0.1", "-u", parts.username or "root", "-e", sql]
        command += [database] if database else []
    subprocess.run(command, check=True, capture_output=True)


def drift(url: str, *, add: bool) -> None:
    """The --drift index, added (before verify) or dropped (before migrate), through the server's CLI."""
    parts = urlsplit(url)
    if add:
        sql = f"CREATE INDEX {DRIFT_INDEX} ON {DRIFT_TABLE} ({DRIFT_COLUMN})"
    else:
        sql = f"DROP INDEX {DRIFT_INDEX}" + (f" ON {DRIFT_TABLE}" if parts.scheme.startswith("mysql") else "")
    if parts.scheme.startswith("sqlite"):
        subprocess.run(["sqlite3", parts.path, sql], check=True, capture_output=True)
    else:
        server(url, sql, database=parts.path.lstrip("/"))


def measure(python: str, url: str, rounds: int, baseline: Path | None, *, drifted: bool) -> dict[str, list[float]]:
    src = ROOT / "src"
    times: dict[str, list[float]] = {"migrate": [], "verify": [], "verify (baseline)": []}
    times["migrate (all, from empty)"] = [checked("migrate", run(python, src, url, "migrate", "--verbosity", "0"))]
    for number in range(rounds):
        for app, target in BACKWARDS:
            checked(f"migrate {app} {target}", run(python, src, url, "migrate", app, target, "--verbosity", "0"))
        if drifted:
            drift(url, add=True)
        seconds, verified = run(python, src, url, "byhand", "verify")
        if verified.returncode not in (0, 1) or (drifted and DRIFT_INDEX not in verified.stdout):
            sys.exit(f"verify failed:\n{verified.stdout[-3000:]}\n{verified.stderr[-2000:]}")
        times["verify"].append(seconds)
        if baseline is not None:
            seconds, before = run(python, baseline, url, "byhand", "verify")
            if before.stdout != verified.stdout:
                sys.exit(f"verify reports otherwise than the baseline:\n{verified.stdout}\n---\n{before.stdout}")
            times["verify (baseline)"].append(seconds)
        if drifted:
            drift(url, add=False)
        migrated = run(python, src, url, "migrate")
        times["migrate"].append(checked("migrate", migrated))
        pending = migrated[1].stdout.count("  Applying ")
        line = ", ".join(f"{name} {values[-1]:.1f} s" for name, values in times.items() if values)
        print(f"  round {number + 1}/{rounds} ({pending} pending): {line}", flush=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--python", required=True, help="the real-world venv's python (scripts/realworld.sh)")
    parser.add_argument("--database-url", action="append", help="repeat for several vendors (default: SQLite)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, help="another commit's src folder, timed side by side")
    parser.add_argument("--drift", action="store_true", help="an index no migration makes is added before verify")
    args = parser.parse_args()
    for url in args.database_url or ["sqlite:////tmp/byhand_verify_pending.sqlite3"]:
        name = urlsplit(url).path.lstrip("/")
        if url.startswith("sqlite"):
            Path("/" + name).unlink(missing_ok=True)
        else:
            server(url, f"DROP DATABASE IF EXISTS {name}")
            server(url, f"CREATE DATABASE {name}")
        try:
            print(f"{url.split(':')[0]}:", flush=True)
            times = measure(args.python, url, args.rounds, args.baseline_src, drifted=args.drift)
        finally:
            if url.startswith("sqlite"):
                Path("/" + name).unlink(missing_ok=True)
            else:
                server(url, f"DROP DATABASE IF EXISTS {name}")
        medians = {name: statistics.median(values) for name, values in times.items() if values}
        summary = ", ".join(f"{name} {value:.1f} s" for name, value in medians.items())
        ratio = medians["verify"] / medians["migrate"]
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"  medians: {summary}; verify / migrate of the pending plan {ratio:.2f} (goal {GOAL}: {verdict})")
        whole = medians["verify"] / medians["migrate (all, from empty)"]
        print(f"  verify / migrate of every migration from empty {whole:.2f}")
        if "verify (baseline)" in medians:
            print(f"  baseline verify / migrate {medians['verify (baseline)'] / medians['migrate']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
