"""Does the live schema match what django_migrations claims? Compare it with a scratch
database migrated to exactly the recorded set, and name the migration behind each
difference."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.apps import apps as global_apps
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from byhand.exceptions import RehearsalError
from byhand.operating.journal import DEFAULT_TABLE
from byhand.planning.attribution import Attribution, attribute, names_referred
from byhand.planning.history import records_of
from byhand.planning.replaying import Pending, apply_pending, unapply_pending
from byhand.planning.schema import Difference, Schema, compare_schemas, find_object, object_name, snapshot
from byhand.planning.scratch import check_on_scratch, use_database
from byhand.planning.states import fewer_collections, project_state
from byhand.vendors import get_vendor
from byhand.vendors.base import SCRATCH_PREFIX

__all__ = ["INFORMATIONAL", "DriftReport", "verify_database"]

Key = tuple[str, str]

#: Verdicts that are printed but are no drift (verify exits 0 with only these).
INFORMATIONAL = frozenset({"backwards-names"})


@dataclass
class DriftReport:
    database: str
    recorded: int
    differences: list[Difference] = field(default_factory=list)
    live: Schema = field(default_factory=dict)
    #: What each recorded migration creates ((table, "table" | "column NAME" | index/constraint name)).
    created_by_recorded: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: Differences a pending migration would make, keyed like Difference (table, what).
    created_by_pending: dict[tuple[str, str], str] = field(default_factory=dict)
    #: The same keys: the object as that pending migration leaves it on the scratch copy.
    made_by_pending: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: (table, what) of what the database has extra or otherwise than the recorded set.
    extra_or_changed: set[tuple[str, str]] = field(default_factory=set)

    def lacks(self, migration: str) -> list[str]:
        """What pending ``migration`` creates or changes that the database does not have,
        or has otherwise than the migration makes it ("table what"), sorted; empty when
        all of it is there (and only then may it be recorded as applied: one leftover
        object proves nothing)."""
        return sorted(
            f"{table} {what}"
            for (table, what), creator in self.created_by_pending.items()
            if creator == migration
            and not (
                (table, what) in self.extra_or_changed
                and find_object(self.live, table, what) == self.made_by_pending[(table, what)]
            )
        )

    def present(self, table: str, what: str) -> bool:
        """Whether the live schema has this table, column or named constraint/index."""
        if table not in self.live:
            return False
        if what == "table":
            return True
        if what.startswith("column "):
            return what[len("column ") :] in self.live[table]["columns"]
        return what in self.live[table]["constraints"]

    @property
    def clean(self) -> bool:
        """No difference but those an ordinary migrate makes itself (INFORMATIONAL)."""
        return all(d.verdict in INFORMATIONAL for d in self.differences)


def _ignored_tables(executor: MigrationExecutor, journal_table: str) -> set[str]:
    """django_migrations, byhand's journal, and the tables of unmigrated apps (they have no migrations)."""
    ignore = {MigrationRecorder.Migration._meta.db_table, journal_table}
    for app in executor.loader.unmigrated_apps:
        try:
            config = global_apps.get_app_config(app)
        except LookupError:
            continue
        for model in config.get_models(include_auto_created=True):
            ignore.add(model._meta.db_table)
    return ignore


def _recorded_closure(
    executor: MigrationExecutor, full_plan: list[Migration], applied: set[Key]
) -> tuple[list[Migration], list[Difference]]:
    """The recorded migrations whose dependencies are recorded too, in plan order (the
    expected schema is built from these); the others are reported."""
    graph = executor.loader.graph
    kept: set[Key] = set()
    done: list[Migration] = []
    orphans: list[Difference] = []
    for migration in full_plan:
        key = (migration.app_label, migration.name)
        if key not in applied:
            continue
        missing = sorted(f"{a}.{n}" for a, n in (p.key for p in graph.node_map[key].parents) if (a, n) not in kept)
        if missing:
            detail = f"recorded, but its dependencies are not: {', '.join(missing)}; left out of the expected schema"
            orphans.append(
                Difference(
                    "inconsistent",
                    "django_migrations",
                    f"migration {key[0]}.{key[1]}",
                    detail,
                    (f"{key[0]}.{key[1]}",),
                    "inconsistent-history",
                )
            )
            continue
        kept.add(key)
        done.append(migration)
    return done, orphans


def _partly_recorded_squashes(executor: MigrationExecutor, recorded: set[Key]) -> Iterator[Difference]:
    for key, migration in sorted(executor.loader.disk_migrations.items()):
        if not migration.replaces:
            continue
        names = records_of(migration, on_disk=executor.loader.disk_migrations)
        present = [n for n in names if n in recorded]
        if present and len(present) < len(names):
            missing = [f"{a}.{n}" for a, n in names if (a, n) not in recorded]
            yield Difference(
                "partly-recorded-squash",
                "django_migrations",
                f"squash {key[0]}.{key[1]}",
                f"{len(present)} of its {len(names)} rows are recorded; missing: {', '.join(missing)}",
                (f"{key[0]}.{key[1]}",),
                "partly-recorded",
            )


def verify_database(
    database: str,
    *,
    scratch_database: str | None = None,
    scratch_prefix: str = SCRATCH_PREFIX,
    journal_table: str = DEFAULT_TABLE,
    every_pending: bool = False,
) -> DriftReport:
    """Read-only on ``database``: its schema against a scratch database of the same server
    migrated to exactly the recorded set; then what pending migrations would create, to
    tell "applied but not recorded" from "no migration explains it". With
    ``every_pending``, what each pending migration creates is found even when no
    difference needs it (``record --check`` reads it)."""
    connection = connections[database]
    executor = MigrationExecutor(connection)
    recorder = MigrationRecorder(connection)
    recorded: set[Key] = set(recorder.applied_migrations()) if recorder.has_table() else set()
    applied = set(executor.loader.applied_migrations)
    ignore = _ignored_tables(executor, journal_table)
    live = snapshot(connection, ignore=ignore)
    full_plan = [m for m, _ in executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)]
    done, orphans = _recorded_closure(executor, full_plan, applied)
    pending = [m for m in full_plan if (m.app_label, m.name) not in applied]
    server = scratch_database or database
    start, expected, ran, returned = _on_scratch(
        database, server, scratch_prefix, done, pending, ignore, live, every_pending=every_pending
    )
    attribution = attribute(done, start)
    report = DriftReport(
        database=database,
        recorded=len(recorded),
        live=live,
        created_by_recorded=attribution.created,
        created_by_pending=ran.found,
        made_by_pending=ran.made,
    )
    report.differences.extend(_partly_recorded_squashes(executor, recorded))
    report.differences.extend(orphans)
    found = list(compare_schemas(expected, live, returned=returned))
    report.extra_or_changed = {(d.table, d.what) for d in found if d.kind in ("extra", "changed")}
    referred = names_referred(pending)
    for difference in found:
        report.differences.append(_judge(difference, attribution, report, referred))
    return report


def _on_scratch(
    database: str,
    server_alias: str,
    prefix: str,
    done: list[Migration],
    pending: list[Migration],
    ignore: set[str],
    live: Schema,
    *,
    every_pending: bool,
) -> tuple[ProjectState, Schema, Pending, Schema | None]:
    """On an empty scratch database (``prefix``<pid>_<random> on ``server_alias``'s server,
    dropped afterwards): the start state, the schema the recorded migrations ``done`` make,
    what the ``pending`` migrations would add, and, when ``live`` has something of it
    under another name, the schema once the pending migrations are unapplied again.

    The pending migrations are applied only as far as some difference of ``live`` needs
    them to be explained (all of them with ``every_pending``, or when ``live`` has
    something under another name: the way back must be Django's whole way back), never
    when it has none: applying them cost about as much again as the recorded ones, and
    verify is run most often on a database without drift, before its pending migrations
    are applied."""
    connection = connections[database]
    vendor = get_vendor(connection.vendor)
    server = connections[server_alias]
    scratch = vendor.make_empty_scratch(connection, server=server, prefix=prefix)
    try:
        with fewer_collections(), use_database(database, scratch.settings) as copy:
            check_on_scratch(copy, vendor, scratch)
            scratch_executor = MigrationExecutor(copy)
            start = project_state(scratch_executor, with_applied=False)
            try:
                state = scratch_executor.migrate([], plan=[(m, False) for m in done])
            except Exception as exc:
                raise RehearsalError(f"could not migrate the scratch database to the recorded set: {exc}") from exc
            expected = snapshot(copy, ignore=ignore)
            found = list(compare_schemas(expected, live))
            renamed = any(d.kind == "renamed" for d in found)
            wanted = {(d.table, d.what) for d in found if d.kind in _EXPLAINED_BY_PENDING}
            if not (wanted or every_pending):
                return start, expected, Pending(schema=expected), None
            ran = apply_pending(
                scratch_executor,
                copy,
                pending,
                state,
                ignore=ignore,
                before=expected,
                keep_states=renamed,
                wanted=None if renamed or every_pending else wanted,
            )
            returned = unapply_pending(scratch_executor, copy, ran, ignore=ignore) if renamed else None
            return start, expected, ran, returned
    finally:
        vendor.drop_scratch(scratch, server=server)


#: The kinds of difference a pending migration may explain (it creates or changes that object).
_EXPLAINED_BY_PENDING = ("extra", "changed", "renamed")

_VERDICTS = {
    "missing": "recorded-not-applied",
    "changed": "changed",
    "renamed": "name-drift",
    "renamed-by-migrate": "backwards-names",
    "extra": "unexplained",
}


def _judge(
    difference: Difference, attribution: Attribution, report: DriftReport, referred: dict[str, str]
) -> Difference:
    key = (difference.table, difference.what)
    name = object_name(difference.what)
    if difference.kind == "renamed-by-migrate" and name in referred:
        # Django's own backwards named it so, but a pending migration finds it by the name
        # the migrations give it: migrate would fail there.
        detail = f"{difference.detail}, but pending {referred[name]} finds it by the name {name!r}"
        return replace(difference, detail=detail, migrations=attribution.find(difference), verdict="name-drift")
    pending = report.created_by_pending.get(key)
    if difference.kind in ("extra", "changed") and pending is not None:
        lacks = report.lacks(pending)
        if not lacks:
            detail = (
                f"{difference.detail}; pending {pending} creates it: applied but not recorded "
                f"(manage.py byhand record {pending.replace('.', ' ', 1)})"
            )
            return replace(difference, detail=detail, migrations=(pending,), verdict="applied-not-recorded")
        # A leftover (Django's MySQL backwards keeps foreign-key indexes; a RunSQL reversed
        # by noop keeps what it made) or a partial run: recording it would make migrate skip
        # the rest for good.
        detail = (
            f"{difference.detail}; pending {pending} creates it, but the database lacks (or has otherwise) "
            f"the rest of what it does ({'; '.join(lacks)}): not applied as a whole, do not record it"
        )
        return replace(difference, detail=detail, migrations=(pending,), verdict="partly-applied")
    # No migration explains an extra object; for the others, those that create or change it.
    migrations = () if difference.kind == "extra" else attribution.find(difference)
    return replace(difference, migrations=migrations, verdict=_VERDICTS[difference.kind])
