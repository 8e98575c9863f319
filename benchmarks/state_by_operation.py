#!/usr/bin/env python
"""Where Django's state work for tests/realworld's whole plan goes, by operation type.

    .venv-realworld52/bin/python benchmarks/state_by_operation.py

Evolves one project state through the whole plan from empty as migrate does (rendered
once, then each operation's state_forwards, which re-renders the models it changes and
those related to them), timing each call, and prints the total per operation type: the
floor of realworld_sql.py taken apart. An AlterField whose new field deconstructs as the
old one does is counted apart. Uses a throw-away SQLite database (no migration is run).
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "realworld.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.gettempdir()}/byhand_state_by_operation.sqlite3"
    import django

    django.setup()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.operations import AlterField

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    state = executor._create_project_state(with_applied_migrations=False)
    state.apps  # noqa: B018 -- render once, as migrate does
    seconds: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for migration, _backwards in plan:
        for operation in migration.operations:
            kind = type(operation).__name__
            if isinstance(operation, AlterField):
                old = state.models[migration.app_label, operation.model_name_lower].fields[operation.name]
                if old.deconstruct()[1:] == operation.field.deconstruct()[1:]:
                    kind += " (deconstructs as before)"
            start = time.perf_counter()
            operation.state_forwards(migration.app_label, state)
            seconds[kind] += time.perf_counter() - start
            counts[kind] += 1
    print(f"{len(plan)} migrations; state_forwards {sum(seconds.values()):.2f} s in all")
    for kind, spent in seconds.most_common():
        print(f"{spent:7.2f} s {counts[kind]:5d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
