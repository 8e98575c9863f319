"""What the operations of a plan are, as byhand must know them: their descriptions, the
Python among them (manual steps), whether they reverse, and what contenttypes injects."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.apps import apps
from django.db import router
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RenameModel, RunPython, RunSQL, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from byhand.exceptions import IrreversibleMigrations
from byhand.planning.plans import Plan

__all__ = [
    "check_reversible",
    "describe",
    "file_index",
    "foreign_sql_operations",
    "inject_contenttype_renames",
    "is_noop",
    "manual_steps_of",
    "python_operations",
    "python_step_name",
]


def describe(operation: Operation) -> str:
    """The operation's description as sqlmigrate prints it, on one line."""
    return " ".join(str(operation.describe()).split("\n"))


def python_step_name(operation: RunPython, backwards: bool) -> str:
    if operation.__class__.__name__ == "RenameContentType":
        old, new = operation.old_model, operation.new_model  # type: ignore[attr-defined]
        if backwards:
            old, new = new, old
        return (
            f"django.contrib.contenttypes: rename content type "
            f"{operation.app_label}.{old} to {operation.app_label}.{new}"  # type: ignore[attr-defined]
        )
    code = operation.reverse_code if backwards else operation.code
    name = getattr(code, "__qualname__", None) or repr(code)
    return f"{getattr(code, '__module__', '?')}.{name}"


def is_noop(operation: RunPython, backwards: bool) -> bool:
    return (operation.reverse_code if backwards else operation.code) is RunPython.noop


def file_index(migration: Migration, index: int) -> int:
    """The operation's index in the migration file: contenttypes injects a
    RenameContentType after each RenameModel, which takes the RenameModel's index."""
    injected = sum(1 for op in migration.operations[:index] if op.__class__.__name__ == "RenameContentType")
    own = migration.operations[index].__class__.__name__ == "RenameContentType"
    return index - injected - (1 if own else 0)


def python_operations(operation: Operation) -> Iterator[RunPython]:
    if isinstance(operation, RunPython):
        yield operation
    elif isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from python_operations(inner)


#: Modules of the operations whose SQL is Django's schema editor's own, which needs nothing
#: of the transaction around it beyond what its statements do.
_DJANGO_OPERATIONS = ("django.db.migrations.operations.", "django.contrib.postgres.operations")


def foreign_sql_operations(operation: Operation) -> Iterator[Operation]:
    """What in ``operation`` runs SQL that is not the schema editor's own: a RunSQL, or an
    operation of another package (which may rely on the migration's one transaction: a
    temporary table, SET LOCAL, LOCK TABLE). Nested in SeparateDatabaseAndState too."""
    if isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from foreign_sql_operations(inner)
    elif isinstance(operation, RunSQL) or not type(operation).__module__.startswith(_DJANGO_OPERATIONS):
        yield operation


def manual_steps_of(plan: Plan) -> list[str]:
    """Every RunPython the plan would need run by hand, as 'app.migration #op: path'."""
    steps = []
    for migration in plan.migrations:
        for index, operation in enumerate(migration.operations):
            for python in python_operations(operation):
                allowed = router.allow_migrate(plan.alias, migration.app_label, **python.hints)
                if allowed and not is_noop(python, plan.backwards):
                    where = f"{migration.app_label}.{migration.name} operation {file_index(migration, index)}"
                    steps.append(f"{where}: {python_step_name(python, plan.backwards)}")
    return steps


def check_reversible(plan: Plan) -> None:
    irreversible = [
        f"{migration.app_label}.{migration.name} operation {index}: {describe(operation)}"
        for migration in plan.migrations
        for index, operation in enumerate(migration.operations)
        if not operation.reversible
    ]
    if irreversible:
        raise IrreversibleMigrations(irreversible)


def inject_contenttype_renames(plan: Plan, pre_state: Callable[[], ProjectState]) -> None:
    """Do what contenttypes' pre_migrate receiver does to the plan before migrate runs it:
    a RenameContentType (a RunPython) after every RenameModel, in both directions."""
    if not apps.is_installed("django.contrib.contenttypes"):
        return
    if not any(isinstance(op, RenameModel) for m in plan.migrations for op in m.operations):
        return
    from django.contrib.contenttypes.management import inject_rename_contenttypes_operations

    pairs = [(migration, plan.backwards) for migration in plan.migrations]
    inject_rename_contenttypes_operations(plan=pairs, apps=pre_state().apps, using=plan.alias)
