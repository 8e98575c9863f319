"""On a host with the project's code: run one manual step of a runbook (a RunPython
function) against the database.

``byhand apply`` stops before each manual step; the operator runs it here, against the
same database, with the historical models of that point of the migration (as migrate
would pass them), then tells apply ``--manual-step-done APP.MIGRATION:N``. Only the step the database is at
runs (the migration's dependencies recorded and it not, forwards; it recorded and nothing
that depends on it, backwards), and not again once it is done in that direction, unless
``--force`` gives the reason; each run is journaled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import datetime, timezone
from typing import Any

from django.contrib.contenttypes.management import RenameContentType
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RenameModel, RunPython, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from byhand.exceptions import ManualStepAlreadyRun, ManualStepOutOfPlace, PlanError
from byhand.operating.journal import DEFAULT_TABLE, Entry, Journal
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


def run_manual_step(
    step_id: str, *, database: str, backwards: bool, force: str | None = None, journal_table: str = DEFAULT_TABLE
) -> list[str]:
    """Run the Python of manual step ``step_id`` against ``database``; return what ran.

    Refused (ManualStepOutOfPlace, nothing run) unless the database is at that step in that
    direction, as byhand apply leaves it there; refused (ManualStepAlreadyRun) when its last
    run in that direction is done; unless ``force`` gives the reason. Journaled in
    ``journal_table``: a "started" (or "forced") row before, "done", "failed" or
    "interrupted" after."""
    app, name, number = parse_step_id(step_id)
    if force is not None and not force.strip():
        raise PlanError("--force needs a reason, kept in the journal (nothing was run).")
    connection = connections[database]
    vendor = get_vendor(connection.vendor)
    params = vendor.params_from_settings(connection.settings_dict)
    with locked_target(vendor, params, application="byhand run-python") as target:
        # Read under the run lock: no apply moves the database between the check and the run.
        executor = MigrationExecutor(connection)
        loader = executor.loader
        if (app, name) not in loader.disk_migrations:
            raise PlanError(f"no migration {app}.{name} in this project (the exact name, as the runbook writes it).")
        if (app, name) not in loader.graph.node_map:
            raise PlanError(_replaced(loader, (app, name)))
        migration = loader.get_migration(app, name)
        problems = _out_of_place(loader, (app, name), backwards=backwards)
        # Forced, the database is not where django_migrations says: the historical models
        # are those of the graph just before the migration (its dependencies applied), as
        # the operator says the schema is; otherwise those migrate would have.
        state = loader.project_state((app, name), at_end=False) if problems else state_before(executor, migration)
        found = list(_python_at(state, migration, number))
        if not found:
            raise PlanError(
                f"{step_id}: that operation of {app}.{name} has no Python to run (see the runbook's steps)."
            )
        if problems and force is None:
            raise ManualStepOutOfPlace(step_id, backwards=backwards, problems=problems, journal_table=journal_table)
        journal = Journal(target, table=journal_table, checksum="-")
        ran_before = _done_before(journal, step_id, backwards=backwards)
        if ran_before and force is None:
            raise ManualStepAlreadyRun(step_id, backwards=backwards, ran=ran_before, journal_table=journal_table)
        overridden = problems + ([ran_before] if ran_before else [])
        if not journal.exists():
            journal.create()
        detail = {"step": step_id, "direction": "backwards" if backwards else "forwards", "reason": force}
        start = _entry(step_id, "forced" if overridden else "started", {**detail, "overridden": overridden})
        journal.write(start)
        ran: list[str] = []
        try:
            _run(connection, migration, found, backwards=backwards, ran=ran)
        except BaseException as exc:
            status = "failed" if isinstance(exc, Exception) else "interrupted"
            error = f"{type(exc).__name__}: {exc}" if isinstance(exc, Exception) else str(exc) or "Ctrl-C"
            with suppress(Exception):  # the function's own error is what the operator must see
                journal.write(_entry(step_id, status, {**detail, "ran": ran}, since=start, error=error))
            raise
        journal.write(_entry(step_id, "done", {**detail, "ran": ran}, since=start))
    return ran


def _run(connection: Any, migration: Migration, found: list[Found], *, backwards: bool, ran: list[str]) -> None:
    """The step's Python operations, in one schema editor as migrate runs them; each one's
    dotted path is added to ``ran`` once it has run."""
    app = migration.app_label
    with connection.schema_editor(atomic=migration.atomic) as editor:
        for operation, from_state, to_state, top in reversed(found) if backwards else found:
            # As Migration.apply / unapply: where the schema editor holds no transaction
            # (MySQL/MariaDB; a non-atomic migration), an atomic operation gets its own.
            atomic_operation = top.atomic or (migration.atomic and top.atomic is not False)
            own: AbstractContextManager[Any] = nullcontext()
            if atomic_operation and not editor.atomic_migration:
                own = transaction.atomic(connection.alias)
            with own:
                if backwards:
                    operation.database_backwards(app, editor, to_state, from_state)
                else:
                    operation.database_forwards(app, editor, from_state, to_state)
            ran.append(python_step_name(operation, backwards))


def _out_of_place(loader: MigrationLoader, key: tuple[str, str], *, backwards: bool) -> list[str]:
    """Why the database is not at ``key``'s manual steps in that direction, as byhand apply
    leaves it there: forwards, its dependencies recorded and it not; backwards, it recorded
    and none of the migrations depending on it."""
    applied = loader.applied_migrations
    dotted = f"{key[0]}.{key[1]}"
    node = loader.graph.node_map[key]
    if backwards:
        if key not in applied:
            return [
                f"{dotted} is not recorded, and a backwards run reaches its reverse steps while it still "
                "is; to apply it, run without --backwards"
            ]
        dependents = sorted(f"{a}.{n}" for a, n in (c.key for c in node.children) if (a, n) in applied)
        return [f"migrations that depend on it are recorded: {', '.join(dependents)}"] if dependents else []
    if key in applied:
        return [
            f"{dotted} is recorded, so the database is past its forwards steps; to unapply it, run with --backwards"
        ]
    missing = sorted(f"{a}.{n}" for a, n in (p.key for p in node.parents) if (a, n) not in applied)
    return [f"its dependencies are not recorded: {', '.join(missing)}"] if missing else []


def _done_before(journal: Journal, step_id: str, *, backwards: bool) -> str | None:
    """When the step's last run is done in this direction (nothing has run it the other way
    since, nor has apply completed its migration): when and by whom, as the refusal says it."""
    app, name, number = parse_step_id(step_id)
    row = journal.last_python_run(f"{app}.{name}", number)
    direction = "backwards" if backwards else "forwards"
    if row is None or row["status"] != "done" or json.loads(row["detail"] or "{}").get("direction") != direction:
        return None
    done_at = journal.target.moment(row["finished_at"] or row["started_at"])
    return f"it already ran {direction}, done at {done_at:%Y-%m-%d %H:%M:%S} UTC by {row['operator']}"


def _replaced(loader: MigrationLoader, key: tuple[str, str]) -> str:
    """Why a migration a squash replaces, missing from the graph (none or all of it recorded:
    migrate uses the squash), has no step to run."""
    squashes = sorted(f"{a}.{n}" for (a, n), m in loader.replacements.items() if key in map(tuple, m.replaces))
    return (
        f"{key[0]}.{key[1]} is replaced by {', '.join(squashes)}, which migrate runs instead on this database: "
        "its steps never run here; run the squash's step, as the runbook names it (nothing was run)."
    )


def _entry(
    step_id: str, status: str, detail: dict[str, Any], *, since: Entry | None = None, error: str | None = None
) -> Entry:
    """A run-python journal row: its start (``since`` None), or its end since that start."""
    app, name, number = parse_step_id(step_id)
    now = datetime.now(timezone.utc)
    return Entry(
        event="run-python",
        status=status,
        migration=f"{app}.{name}",
        statement_index=number,
        started_at=since.started_at if since else now,
        finished_at=now if since else None,
        error=error,
        detail=detail,
    )


#: A RunPython operation behind a manual step, the states before and after it, and the
#: top-level operation of the migration that holds it (its ``atomic`` decides, as in
#: Migration.apply, whether migrate gives it a transaction of its own).
Found = tuple[RunPython, ProjectState, ProjectState, Operation]


def _python_at(start: ProjectState, migration: Migration, number: int) -> Iterator[Found]:
    """The RunPython operations behind manual step ``number`` (an operation's index in the
    migration file), with the states before and after each, as the executor builds them."""
    app = migration.app_label
    state = start.clone()
    for index, operation in enumerate(migration.operations):
        before = state.clone()
        operation.state_forwards(app, state)
        if file_index(migration, index) != number:
            continue
        yield from _python_in(app, operation, before, state, top=operation)


def _python_in(
    app: str, operation: Operation, before: ProjectState, after: ProjectState, *, top: Operation
) -> Iterator[Found]:
    if isinstance(operation, RunPython):
        if not is_noop(operation, backwards=False) or not is_noop(operation, backwards=True):
            yield operation, before, after, top
    elif isinstance(operation, RenameModel):
        # What contenttypes' pre_migrate injects after a RenameModel under migrate (an
        # operation of the migration's own there).
        rename = RenameContentType(app, operation.old_name_lower, operation.new_name_lower)
        yield rename, before, after, rename
    elif isinstance(operation, SeparateDatabaseAndState):
        state = before.clone()
        for inner in operation.database_operations:
            inner_before = state.clone()
            inner.state_forwards(app, state)
            yield from _python_in(app, inner, inner_before, state, top=top)
