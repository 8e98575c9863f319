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
from django.db.migrations.operations import (
    AddConstraint,
    AddField,
    AddIndex,
    AlterField,
    AlterModelTable,
    CreateModel,
    RemoveConstraint,
    RemoveField,
    RemoveIndex,
    RenameField,
    RenameIndex,
    RenameModel,
)
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from byhand.exceptions import RehearsalError
from byhand.journal import DEFAULT_TABLE
from byhand.planning import fewer_collections
from byhand.rehearsing import check_on_scratch, use_database
from byhand.vendors import get_vendor

__all__ = ["Difference", "DriftReport", "compare_schemas", "snapshot", "touched_by", "verify_database"]

Key = tuple[str, str]
Schema = dict[str, dict[str, Any]]  # table -> {"columns": {...}, "constraints": {...}}


@dataclass(frozen=True)
class Difference:
    """One thing the live schema has, lacks or has otherwise than the recorded migrations imply."""

    kind: str  # missing, extra, changed, renamed, partly-recorded-squash
    table: str
    what: str  # "table", "column price", "index shop_book_promo_idx", ...
    detail: str
    migrations: tuple[str, ...] = ()  # the migration(s) that create or change it
    verdict: str = ""  # recorded-not-applied, applied-not-recorded, name-drift, unexplained, ...

    def describe(self) -> str:
        by = f" ({', '.join(self.migrations)})" if self.migrations else ""
        return f"{self.verdict}: {self.table} {self.what}: {self.detail}{by}"


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
        return not self.differences


# -- snapshots ---------------------------------------------------------------------------


def snapshot(connection: Any, *, ignore: set[str]) -> Schema:
    """Tables, columns (type, nullability, default) and constraints/indexes, as Django introspects them."""
    introspection = connection.introspection
    schema: Schema = {}
    with connection.cursor() as cursor:
        for info in introspection.get_table_list(cursor):
            if info.name in ignore or info.type != "t":
                continue
            columns = {
                c.name: (str(c.type_code), bool(c.null_ok), None if c.default is None else str(c.default))
                for c in introspection.get_table_description(cursor, info.name)
            }
            constraints = {
                name: _signature(data) for name, data in introspection.get_constraints(cursor, info.name).items()
            }
            schema[info.name] = {"columns": columns, "constraints": constraints}
    return schema


#: Django's get_constraints() flags, in the order that decides what a constraint is.
_KINDS = (("primary_key", "primary key"), ("foreign_key", "foreign key"), ("check", "check"), ("unique", "unique"))


def _signature(data: dict[str, Any]) -> tuple[Any, ...]:
    """What a constraint or index is, without its name: kind, columns, FK target, index type."""
    kind = next((kind for flag, kind in _KINDS if data.get(flag)), "index")
    return (kind, tuple(data.get("columns") or ()), tuple(data.get("foreign_key") or ()), data.get("type"))


def _label(name: str, signature: tuple[Any, ...]) -> str:
    kind, columns = signature[0], signature[1]
    return f"{kind} {name} ({', '.join(columns)})"


# -- comparing ----------------------------------------------------------------------------


def compare_schemas(expected: Schema, live: Schema) -> Iterator[Difference]:
    """Every difference, unattributed: missing/extra tables, columns, constraints; a
    constraint with the same definition under another name is a rename (name drift)."""
    for table in sorted(expected.keys() - live.keys()):
        yield Difference("missing", table, "table", "the table does not exist")
    for table in sorted(live.keys() - expected.keys()):
        yield Difference("extra", table, "table", "no recorded migration creates this table")
    for table in sorted(expected.keys() & live.keys()):
        want, have = expected[table], live[table]
        for column in sorted(want["columns"].keys() - have["columns"].keys()):
            yield Difference("missing", table, f"column {column}", "the column does not exist")
        for column in sorted(have["columns"].keys() - want["columns"].keys()):
            yield Difference("extra", table, f"column {column}", "no recorded migration adds this column")
        for column in sorted(want["columns"].keys() & have["columns"].keys()):
            w, h = want["columns"][column], have["columns"][column]
            for label, a, b in (("type", w[0], h[0]), ("null", w[1], h[1]), ("default", w[2], h[2])):
                if a != b:
                    yield Difference("changed", table, f"column {column}", f"{label} is {b!r}, migrations say {a!r}")
        yield from _compare_constraints(table, want["constraints"], have["constraints"])


def _compare_constraints(table: str, want: dict[str, Any], have: dict[str, Any]) -> Iterator[Difference]:
    unmatched_have = {name: sig for name, sig in have.items() if name not in want}
    for name, signature in sorted(want.items()):
        if name in have:
            if have[name] != signature:
                detail = f"is {_label(name, have[name])}, migrations say {_label(name, signature)}"
                yield Difference("changed", table, f"{signature[0]} {name}", detail)
            continue
        same = [other for other, sig in unmatched_have.items() if sig == signature]
        if same:
            del unmatched_have[same[0]]
            detail = f"exists as {same[0]!r} (same definition, another name)"
            yield Difference("renamed", table, _label(name, signature), detail)
        else:
            yield Difference("missing", table, _label(name, signature), "does not exist")
    for name, signature in sorted(unmatched_have.items()):
        yield Difference("extra", table, _label(name, signature), "no recorded migration creates it")


# -- attribution --------------------------------------------------------------------------


def _table_of(state: ProjectState, app: str, model: str) -> str:
    model_state = state.models.get((app, model.lower()))
    if model_state is None:
        return f"{app}_{model.lower()}"
    return str(model_state.options.get("db_table") or f"{app}_{model.lower()}")


def _column_of(field_obj: Any, name: str) -> str:
    column = getattr(field_obj, "db_column", None)
    if column:
        return str(column)
    return f"{name}_id" if getattr(field_obj, "many_to_one", False) or getattr(field_obj, "one_to_one", False) else name


def touched_by(migration: Migration, state: ProjectState) -> Iterator[tuple[str, str, bool]]:
    """(table, what, created) for what an operation of ``migration`` creates or changes;
    ``state`` is evolved through it. what: "table", "column NAME", or a constraint/index name."""
    app = migration.app_label
    for operation in migration.operations:
        if isinstance(operation, CreateModel):
            table = str(operation.options.get("db_table") or f"{app}_{operation.name_lower}")
            yield table, "table", True
            for name, created in operation.fields:
                yield table, f"column {_column_of(created, name)}", True
        elif isinstance(operation, (AddField, AlterField, RemoveField)):
            table = _table_of(state, app, operation.model_name)
            field_obj: Any = getattr(operation, "field", None)
            if field_obj is None:
                model_state = state.models.get((app, operation.model_name_lower))
                field_obj = model_state.fields.get(operation.name) if model_state else None
            yield table, f"column {_column_of(field_obj, operation.name)}", isinstance(operation, AddField)
        elif isinstance(operation, RenameField):
            table = _table_of(state, app, operation.model_name)
            yield table, f"column {operation.old_name}", False
            yield table, f"column {operation.new_name}", False
        elif isinstance(operation, (AddIndex, AddConstraint)):
            item: Any = getattr(operation, "index", None) or getattr(operation, "constraint", None)
            yield _table_of(state, app, operation.model_name), str(item.name), True
        elif isinstance(operation, (RemoveIndex, RemoveConstraint)):
            yield _table_of(state, app, operation.model_name), str(operation.name), False
        elif isinstance(operation, RenameIndex):
            table = _table_of(state, app, operation.model_name)
            yield table, str(operation.new_name), False
            if operation.old_name:
                yield table, str(operation.old_name), False
        elif isinstance(operation, (RenameModel, AlterModelTable)):
            old = _table_of(state, app, operation.old_name if isinstance(operation, RenameModel) else operation.name)
            yield old, "table", False
        operation.state_forwards(app, state)
        if isinstance(operation, (RenameModel, AlterModelTable)):
            new = operation.new_name if isinstance(operation, RenameModel) else operation.name
            yield _table_of(state, app, new), "table", False


@dataclass
class _Attribution:
    by_object: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    created: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # migration -> what it creates

    def add(self, migration: str, table: str, what: str) -> None:
        names = self.by_object.setdefault((table, what), [])
        if migration not in names:
            names.append(migration)

    def find(self, difference: Difference) -> tuple[str, ...]:
        table, what = difference.table, difference.what
        keys = [(table, what)]
        parts = what.split()
        if len(parts) >= 2 and parts[0] not in ("table", "column"):
            name_part = parts[1] if parts[0] not in ("primary", "foreign") else parts[2]
            keys.insert(0, (table, name_part))
            columns = what[what.find("(") + 1 : what.rfind(")")].split(", ") if "(" in what else []
            keys.extend((table, f"column {c}") for c in columns)
        keys.append((table, "table"))
        for key in keys:
            if key in self.by_object:
                return tuple(self.by_object[key])
        return ()


def _attribution(migrations: list[Migration], start: ProjectState) -> _Attribution:
    attribution = _Attribution()
    state = start.clone()
    for migration in migrations:
        name = f"{migration.app_label}.{migration.name}"
        for table, what, created in touched_by(migration, state):
            attribution.add(name, table, what)
            if created:
                attribution.created.setdefault(name, []).append((table, what))
    return attribution


# -- the whole check ----------------------------------------------------------------------


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
        names = [tuple(r) for r in migration.replaces] + [key]
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
    database: str, *, scratch_database: str | None = None, journal_table: str = DEFAULT_TABLE
) -> DriftReport:
    """Read-only on ``database``: its schema against a scratch database of the same server
    migrated to exactly the recorded set; then what pending migrations would create, to
    tell "applied but not recorded" from "no migration explains it"."""
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
    vendor = get_vendor(connection.vendor)
    server = connections[scratch_database] if scratch_database else connection
    scratch = vendor.make_empty_scratch(connection, server=server)
    try:
        with fewer_collections(), use_database(database, scratch.settings) as copy:
            check_on_scratch(copy, vendor, scratch)
            scratch_executor = MigrationExecutor(copy)
            start = scratch_executor._create_project_state(with_applied_migrations=False)  # type: ignore[attr-defined]
            try:
                state = scratch_executor.migrate([], plan=[(m, False) for m in done])
            except Exception as exc:
                raise RehearsalError(f"could not migrate the scratch database to the recorded set: {exc}") from exc
            expected = snapshot(copy, ignore=ignore)
            created_by_pending = _pending_objects(scratch_executor, copy, pending, state, ignore, expected)
    finally:
        vendor.drop_scratch(scratch, server=server)
    attribution = _attribution(done, start)
    report = DriftReport(
        database=database,
        recorded=len(recorded),
        live=live,
        created_by_recorded=attribution.created,
        created_by_pending=created_by_pending,
    )
    report.differences.extend(_partly_recorded_squashes(executor, recorded))
    report.differences.extend(orphans)
    for difference in compare_schemas(expected, live):
        report.differences.append(_judge(difference, attribution, created_by_pending))
    return report


def _pending_objects(
    executor: MigrationExecutor,
    connection: Any,
    pending: list[Migration],
    state: ProjectState,
    ignore: set[str],
    before: Schema,
) -> dict[tuple[str, str], str]:
    """(table, what) -> the pending migration that would create or change it, found by
    applying the pending migrations one by one to the scratch copy."""
    found: dict[tuple[str, str], str] = {}
    previous = before
    for migration in pending:
        try:
            state = executor.apply_migration(state, migration)
        except Exception:  # noqa: BLE001 -- a pending migration that fails here explains nothing
            break
        now = snapshot(connection, ignore=ignore)
        for difference in compare_schemas(previous, now):
            if difference.kind in ("extra", "changed", "renamed"):
                found.setdefault((difference.table, difference.what), f"{migration.app_label}.{migration.name}")
        previous = now
    return found


_VERDICTS = {"missing": "recorded-not-applied", "changed": "changed", "renamed": "name-drift", "extra": "unexplained"}


def _judge(
    difference: Difference, attribution: _Attribution, created_by_pending: dict[tuple[str, str], str]
) -> Difference:
    key = (difference.table, difference.what)
    pending = created_by_pending.get(key)
    if difference.kind in ("extra", "changed") and pending is not None:
        detail = (
            f"{difference.detail}; pending {pending} creates it: applied but not recorded "
            f"(byhand record {pending.replace('.', ' ', 1)})"
        )
        return replace(difference, detail=detail, migrations=(pending,), verdict="applied-not-recorded")
    # No migration explains an extra object; for the others, those that create or change it.
    migrations = () if difference.kind == "extra" else attribution.find(difference)
    return replace(difference, migrations=migrations, verdict=_VERDICTS[difference.kind])
