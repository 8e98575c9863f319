"""Choose the plan exactly as ``manage.py migrate`` would, with Django's own loader and graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import DatabaseError, connections
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder

from byhand.exceptions import DatabaseUnavailable, PlanError
from byhand.planning.history import NESTED_SQUASHES, records_of

__all__ = ["Key", "Plan", "check_app", "find_migration", "pending_plan", "replacement_rows", "single_plan"]

Key = tuple[str, str]


@dataclass
class Plan:
    """What to run, in order, and everything needed to compute Django's states for it."""

    alias: str
    executor: MigrationExecutor
    migrations: list[Migration]
    backwards: bool
    target: str | None = None  # as given on the command line, for the header
    recorded: set[Key] = field(default_factory=set)  # rows in django_migrations now
    has_recorder_table: bool = True

    @property
    def loader(self) -> MigrationLoader:
        return self.executor.loader


def _executor(alias: str) -> tuple[MigrationExecutor, set[Key], bool]:
    connection = connections[alias]
    try:
        executor = MigrationExecutor(connection)
        recorder = MigrationRecorder(connection)
        has_table = recorder.has_table()
        recorded = set(recorder.applied_migrations()) if has_table else set()
    except DatabaseError as exc:
        raise DatabaseUnavailable(alias, exc) from exc
    try:
        executor.loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as exc:
        raise PlanError(
            f"{exc}\nThe history in django_migrations is inconsistent; fix the recorded rows "
            "(byhand record / unrecord) before planning."
        ) from None
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        names = "; ".join(f"{', '.join(sorted(n))} in {app}" for app, n in sorted(conflicts.items()))
        raise PlanError(
            f"conflicting migrations, several leaf nodes in the graph: ({names}). "
            "Run 'manage.py makemigrations --merge' first."
        )
    return executor, recorded, has_table


def check_app(loader: MigrationLoader, app_label: str) -> None:
    """The app is installed and has migrations, or a PlanError saying which is not so."""
    try:
        apps.get_app_config(app_label)
    except LookupError as exc:
        raise PlanError(f"{exc} Use the app's label (AppConfig.label), as migrate does.") from None
    if app_label not in loader.migrated_apps:
        raise PlanError(f"app '{app_label}' does not have migrations.")


def find_migration(loader: MigrationLoader, app_label: str, name: str) -> Key:
    """An exact name wins; otherwise a unique prefix; an ambiguous prefix lists the candidates."""
    if (app_label, name) in loader.disk_migrations:
        return app_label, name
    candidates = sorted(n for a, n in loader.disk_migrations if a == app_label and n.startswith(name))
    if not candidates:
        raise PlanError(f"cannot find a migration matching '{name}' in app '{app_label}'.")
    if len(candidates) > 1:
        raise PlanError(
            f"more than one migration matches '{name}' in app '{app_label}': "
            f"{', '.join(candidates)}. Give more of the name."
        )
    return app_label, candidates[0]


def pending_plan(*, database: str, app_label: str | None = None, migration: str | None = None) -> Plan:
    """The plan ``manage.py migrate [APP_LABEL [MIGRATION]] --database ALIAS`` would run."""
    executor, recorded, has_table = _executor(database)
    loader = executor.loader
    given = app_label  # the target, fully named, for the runbook's header
    if app_label is not None:
        check_app(loader, app_label)
    if app_label is not None and migration is not None:
        if migration == "zero":
            targets: list[tuple[str, str | None]] = [(app_label, None)]
            given = f"{app_label} zero"
        else:
            target = find_migration(loader, app_label, migration)
            given = ".".join(target)
            if target not in loader.graph.nodes and target in loader.replacements:
                # A partly applied squash is not a node; migrate targets its last replaced one.
                target = loader.replacements[target].replaces[-1]
            targets = [target]
    elif app_label is not None:
        targets = [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
    else:
        targets = list(loader.graph.leaf_nodes())
    plan = executor.migration_plan(targets)
    directions = {backwards for _migration, backwards in plan}
    if len(directions) > 1:
        raise PlanError("the plan mixes forwards and backwards migrations; split it into separate runbooks.")
    backwards = directions == {True}
    migrations = [migration_ for migration_, _ in plan]
    if not backwards:
        # _migrate_all_forwards applies in the order of the full plan.
        full_plan = executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
        chosen = set(migrations)
        migrations = [m for m, _ in full_plan if m in chosen]
    return Plan(database, executor, migrations, backwards, given, recorded, has_table)


def single_plan(*, database: str, app_label: str, migration: str, backwards: bool) -> Plan:
    """One migration alone, as ``sqlmigrate`` would print it, but only where it is safe.

    Forwards, the migration must be unapplied with every dependency applied;
    backwards, it must be applied with no applied dependents. Otherwise the SQL
    would be generated against a schema the database does not have.
    """
    executor, recorded, has_table = _executor(database)
    loader = executor.loader
    check_app(loader, app_label)
    key = find_migration(loader, app_label, migration)
    if key not in loader.graph.nodes:
        raise PlanError(
            f"{key[0]}.{key[1]} is replaced by a squashed migration in this database's graph; "
            "name the squash, or use 'byhand sql APP MIGRATION'."
        )
    applied = set(loader.applied_migrations)
    node = loader.graph.node_map[key]
    if not backwards:
        if key in applied:
            raise PlanError(f"{key[0]}.{key[1]} is already applied.")
        missing = sorted(f"{a}.{n}" for a, n in (p.key for p in node.parents) if (a, n) not in applied)
        if missing:
            raise PlanError(
                f"{key[0]}.{key[1]} depends on unapplied {', '.join(missing)}; "
                f"use 'byhand sql {key[0]} {key[1]}' to include them."
            )
    else:
        if key not in applied:
            raise PlanError(f"{key[0]}.{key[1]} is not applied; there is nothing to reverse.")
        dependents = sorted(f"{a}.{n}" for a, n in (c.key for c in node.children) if (a, n) in applied)
        if dependents:
            raise PlanError(
                f"applied migrations depend on {key[0]}.{key[1]}: {', '.join(dependents)}; "
                f"use 'byhand sql {key[0]} <earlier migration>' to unapply them too."
            )
    migration_ = loader.graph.nodes[key]
    return Plan(database, executor, [migration_], backwards, f"{key[0]}.{key[1]}", recorded, has_table)


def replacement_rows(plan: Plan) -> list[tuple[str, str]]:
    """Squash rows check_replacements() would write after this plan (outside the plan)."""
    recorded = set(plan.recorded)
    loader = plan.loader
    for migration in plan.migrations:
        rows = set(records_of(migration, on_disk=loader.disk_migrations))
        recorded = recorded - rows if plan.backwards else recorded | rows
    if NESTED_SQUASHES:
        # Django 6.0+: a replaced squash counts when all it replaces is recorded.
        keys: Any = recorded  # the stubs want the loader's dict; only 'in' is used
        return sorted(k for k in loader.replacements if k not in recorded and loader.all_replaced_applied(k, keys))
    return sorted(
        key
        for key, migration in loader.replacements.items()
        if key not in recorded and all(tuple(r) in recorded for r in migration.replaces)
    )
