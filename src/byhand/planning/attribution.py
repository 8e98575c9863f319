"""Which migration creates or changes each table, column, index and constraint: what
verify names behind a difference."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    SeparateDatabaseAndState,
)
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from byhand.planning.schema import Difference

__all__ = ["Attribution", "attribute", "names_referred", "touched_by"]


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
class Attribution:
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


def attribute(migrations: list[Migration], start: ProjectState) -> Attribution:
    attribution = Attribution()
    state = start.clone()
    for migration in migrations:
        name = f"{migration.app_label}.{migration.name}"
        for table, what, created in touched_by(migration, state):
            attribution.add(name, table, what)
            if created:
                attribution.created.setdefault(name, []).append((table, what))
    return attribution


def names_referred(migrations: list[Migration]) -> dict[str, str]:
    """Index and constraint name -> the first of ``migrations`` with an operation that
    finds it by that name (RemoveIndex, RemoveConstraint, RenameIndex's old_name): on a
    database where it has another name, that migration fails."""
    referred: dict[str, str] = {}
    for migration in migrations:
        for name in _referred_by(migration.operations):
            referred.setdefault(name, f"{migration.app_label}.{migration.name}")
    return referred


def _referred_by(operations: Sequence[Operation]) -> Iterator[str]:
    for operation in operations:
        if isinstance(operation, (RemoveIndex, RemoveConstraint)):
            yield str(operation.name)
        elif isinstance(operation, RenameIndex) and operation.old_name:
            yield str(operation.old_name)
        elif isinstance(operation, SeparateDatabaseAndState):
            yield from _referred_by(operation.database_operations)
