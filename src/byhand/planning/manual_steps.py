"""On a host with the project's code: run one manual step of a runbook (a RunPython
function) against the database.

``byhand apply`` stops before each manual step; the operator runs it here, against the
same database, with the historical models of that point of the migration (as migrate
would pass them), then tells apply ``--manual-step-done APP.MIGRATION:N``.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib.contenttypes.management import RenameContentType
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RenameModel, RunPython, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from byhand.exceptions import PlanError
from byhand.operating.run_lock import locked_target
from byhand.planning.operations import file_index, is_noop, python_step_name
from byhand.planning.states import state_before
from byhand.vendors import get_vendor

__all__ = ["parse_step_id", "run_manual_step"]


def parse_step_id(step_id: str) -> tuple[str, str, int]:
    """'shop.0007_sql_and_python:3' -> ('shop', '0007_sql_and_python', 3)."""
    dotted, _, number = step_id.rpartition(":")
    app, _, name = dotted.partition(".")
    if not app or not name or not number.isdigit():
        raise PlanError(f"{step_id!r} does not name a manual step; write APP.MIGRATION:N as byhand apply prints it.")
    return app, name, int(number)


def run_manual_step(step_id: str, *, database: str, backwards: bool) -> list[str]:
    """Run the Python of manual step ``step_id`` against ``database``; return what ran."""
    app, name, number = parse_step_id(step_id)
    executor = MigrationExecutor(connections[database])
    loader = executor.loader
    migration = loader.get_migration(app, name) if (app, name) in loader.disk_migrations else None
    if migration is None:
        raise PlanError(f"no migration {app}.{name} in this project (the exact name, as the runbook writes it).")
    connection = connections[database]
    ran = []
    found = list(_python_at(state_before(executor, migration), migration, number))
    vendor = get_vendor(connection.vendor)
    params = vendor.params_from_settings(connection.settings_dict)
    with (
        locked_target(vendor, params, application="byhand run-python"),
        connection.schema_editor(atomic=migration.atomic) as editor,
    ):
        for operation, from_state, to_state in reversed(found) if backwards else found:
            if backwards:
                operation.database_backwards(app, editor, to_state, from_state)
            else:
                operation.database_forwards(app, editor, from_state, to_state)
            ran.append(python_step_name(operation, backwards))
    if not ran:
        raise PlanError(f"{step_id}: that operation of {app}.{name} has no Python to run (see the runbook's steps).")
    return ran


def _python_at(
    start: ProjectState, migration: Migration, number: int
) -> Iterator[tuple[RunPython, ProjectState, ProjectState]]:
    """The RunPython operations behind manual step ``number`` (an operation's index in the
    migration file), with the states before and after each, as the executor builds them."""
    app = migration.app_label
    state = start.clone()
    for index, operation in enumerate(migration.operations):
        before = state.clone()
        operation.state_forwards(app, state)
        if file_index(migration, index) != number:
            continue
        yield from _python_in(app, operation, before, state)


def _python_in(
    app: str, operation: Operation, before: ProjectState, after: ProjectState
) -> Iterator[tuple[RunPython, ProjectState, ProjectState]]:
    if isinstance(operation, RunPython):
        if not is_noop(operation, backwards=False) or not is_noop(operation, backwards=True):
            yield operation, before, after
    elif isinstance(operation, RenameModel):
        # What contenttypes' pre_migrate injects after a RenameModel under migrate.
        rename = RenameContentType(app, operation.old_name_lower, operation.new_name_lower)
        yield rename, before, after
    elif isinstance(operation, SeparateDatabaseAndState):
        state = before.clone()
        for inner in operation.database_operations:
            inner_before = state.clone()
            inner.state_forwards(app, state)
            yield from _python_in(app, inner, inner_before, state)
