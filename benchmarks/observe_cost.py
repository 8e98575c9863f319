#!/usr/bin/env python
"""What observing each statement on the scratch copy costs ``byhand sql``: the same byhand
(this working tree's src/), side by side, with the observation on and off.

    python benchmarks/observe_cost.py [--database-url URL] [--rounds 5] [--project DIR] [--realworld PYTHON]

Off means each vendor's observer is replaced by the base one, which reads the statement's
text only (no pg_locks query, no relfilenode, no MariaDB ALGORITHM probes), through a
sitecustomize put on PYTHONPATH for that run alone; nothing else differs. Rounds are
interleaved after one untimed warm-up of each; the runbooks must be the same apart from
what was observed. Prints each round, the medians and on/off (issue 19's goal: ≤ 1.05).
--project and --realworld are as in compare.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import BenchmarkError, say
from compare import _timed
from run import DEFAULT_PROJECT

__all__ = ["main"]

SOURCE = Path(__file__).resolve().parent.parent / "src"

#: Imported at start-up by the "off" runs only: every vendor's observer() gives the base
#: Observer, which runs the statement as it is and infers from its text.
_OFF = """
import importlib

from byhand.vendors.observing import Observer

for _name in ("postgresql", "mysql", "sqlite"):
    _module = importlib.import_module("byhand.vendors." + _name)
    for _value in list(vars(_module).values()):
        if isinstance(_value, type) and "observer" in vars(_value):
            _value.observer = lambda self, connection: Observer()
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/byhand_compare.sqlite3")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT)
    parser.add_argument("--realworld", metavar="PYTHON", help="time tests/realworld's plan, run by this interpreter")
    args = parser.parse_args(argv)
    args.ignore_observed = True  # the runbooks are compared without what was observed
    project = args.project.resolve()
    if not args.realworld and not (project / "manage.py").exists():
        raise BenchmarkError(f"no project in {project}: write it first with benchmarks/generate.py (or run.py)")
    with tempfile.TemporaryDirectory(prefix="byhand-observe-cost-") as workdir:
        patch = Path(workdir) / "off"
        patch.mkdir()
        (patch / "sitecustomize.py").write_text(_OFF)
        sources = {"on": str(SOURCE), "off": os.pathsep.join([str(SOURCE), str(patch)])}
        times: dict[str, list[float]] = {"on": [], "off": []}
        reference = Path(workdir) / "reference.sql"
        for number in range(args.rounds + 1):  # round 0 warms up, untimed
            bodies = {
                name: _timed(name, source, args.database_url, project, times[name] if number else [], reference, args)
                for name, source in sources.items()
            }
            if bodies["on"] != bodies["off"] and not args.realworld:  # real apps' differ run to run
                raise BenchmarkError("the runbooks differ with the observation on and off")
            if number:
                say(f"  round {number}/{args.rounds}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    shape = "tests/realworld" if args.realworld else str(project)
    print(f"{args.database_url.split(':')[0]}, {shape}: byhand sql, medians of {args.rounds} interleaved rounds:")
    print(f"  observation off: {off:.2f} s; on: {on:.2f} s, {on / off:.2f} x off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
