#!/usr/bin/env python
"""cProfile one ``manage.py byhand sql --manual-steps`` of the generated project, on a fresh empty database.

    python benchmarks/profile_byhand.py [--database-url URL] [--top 30] [--stats FILE] [--byhand-commit REV]

Prints the top functions by cumulative and by own (self) time, then byhand's own
functions by cumulative time. The raw profile is kept with --stats FILE (open it
with ``python -m pstats FILE``, or snakeviz if you have it).
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import DEFAULT_PROJECT, HERE, BenchmarkError, export_commit, server_for

__all__ = ["main"]


def profile(args: argparse.Namespace, workdir: Path) -> str:
    project: Path = args.project.resolve()
    if not (project / "manage.py").exists():
        subprocess.run([args.python, str(HERE / "generate.py"), str(project)], check=True)
    server = server_for(args.database_url or f"sqlite:///{workdir / 'profile.sqlite3'}", args.python)
    stats_file: Path = args.stats or workdir / "byhand.prof"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    if args.byhand_commit:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [export_commit(args.byhand_commit, workdir), env.get("PYTHONPATH")])
        )
    command = [
        args.python,
        "-m",
        "cProfile",
        "-o",
        str(stats_file),
        "manage.py",
        "byhand",
        "sql",
        "--manual-steps",
        "-o",
        str(workdir / "runbook.sql"),
    ]
    with server.fresh("profile") as url:
        done = subprocess.run(
            command, cwd=project, env={**env, "DATABASE_URL": url}, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise BenchmarkError(f"byhand sql failed under cProfile:\n{done.stderr.strip()}")
    out = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats("byhand", args.top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", help="as for run.py (default: SQLite in a temporary directory)")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter with Django and byhand (default: this one)"
    )
    parser.add_argument(
        "--project", type=Path, default=DEFAULT_PROJECT, help="generated project (default: %(default)s)"
    )
    parser.add_argument("--top", type=int, default=30, help="rows per listing (default: %(default)s)")
    parser.add_argument("--stats", type=Path, help="keep the raw cProfile output in this file")
    parser.add_argument("--byhand-commit", metavar="REV", help="profile byhand as committed at REV (see run.py)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="byhand_profile_"))
    try:
        print(profile(args, workdir), end="")
    except BenchmarkError as exc:
        print(f"profile failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
