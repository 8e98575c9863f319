"""Plan -> Runbook in one pass over one evolving project state, rehearsed on a scratch copy.

Each migration's SQL is what Django's schema editor executes when it applies
the migration to a schema-only copy of the target, right after the previous
migrations of the plan were applied there: introspection sees the names the
target will really have at that point. The target itself is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RenameModel, RunPython, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from byhand import __version__, recording
from byhand.exceptions import IrreversibleMigrations, ManualStepsRequired, RehearsalError
from byhand.planning import Plan
from byhand.runbook import Block, Comment, Control, Item, Runbook, Step, terminate
from byhand.vendors import Vendor, get_vendor

__all__ = ["compile_runbook", "describe", "manual_steps_of", "replacement_rows", "use_database"]

#: At most this many statements of a RunPython's rehearsal are shown under its manual step.
INFO_LIMIT = 40


def describe(operation: Operation) -> str:
    """The operation's description as sqlmigrate prints it, on one line."""
    return " ".join(str(operation.describe()).split("\n"))


def _callable_path(operation: RunPython, backwards: bool) -> str:
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


def _is_noop(operation: RunPython, backwards: bool) -> bool:
    return (operation.reverse_code if backwards else operation.code) is RunPython.noop


def _file_index(migration: Migration, index: int) -> int:
    """The operation's index in the migration file: contenttypes injects a
    RenameContentType after each RenameModel, which takes the RenameModel's index."""
    injected = sum(1 for op in migration.operations[:index] if op.__class__.__name__ == "RenameContentType")
    own = migration.operations[index].__class__.__name__ == "RenameContentType"
    return index - injected - (1 if own else 0)


def _frozen_default(app_label: str, operation: Operation, state: ProjectState) -> str | None:
    """The callable default (or auto_now) of the field an operation leaves in place, if any."""
    model_name, field_name = getattr(operation, "model_name_lower", ""), getattr(operation, "name", "")
    model = state.models.get((app_label, model_name))
    field = model.fields.get(field_name) if model and field_name else None
    if field is None:
        return None
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return f"the auto_now default of {model_name}.{field_name}"
    if field.has_default() and callable(field.default):
        default = field.default
        path = f"{getattr(default, '__module__', '?')}.{getattr(default, '__qualname__', repr(default))}"
        return f"the default {path}() of {model_name}.{field_name}"
    return None


def _python_operations(operation: Operation) -> Iterator[RunPython]:
    if isinstance(operation, RunPython):
        yield operation
    elif isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _python_operations(inner)


def manual_steps_of(plan: Plan) -> list[str]:
    """Every RunPython the plan would need run by hand, as 'app.migration #op: path'."""
    steps = []
    for migration in plan.migrations:
        for index, operation in enumerate(migration.operations):
            for python in _python_operations(operation):
                allowed = router.allow_migrate(plan.alias, migration.app_label, **python.hints)
                if allowed and not _is_noop(python, plan.backwards):
                    where = f"{migration.app_label}.{migration.name} operation {_file_index(migration, index)}"
                    steps.append(f"{where}: {_callable_path(python, plan.backwards)}")
    return steps


def _check_reversible(plan: Plan) -> None:
    irreversible = [
        f"{migration.app_label}.{migration.name} operation {index}: {describe(operation)}"
        for migration in plan.migrations
        for index, operation in enumerate(migration.operations)
        if not operation.reversible
    ]
    if irreversible:
        raise IrreversibleMigrations(irreversible)


def _inject_contenttype_renames(plan: Plan, pre_state: Callable[[], ProjectState]) -> None:
    """Do what contenttypes' pre_migrate receiver does to the plan before migrate runs it:
    a RenameContentType (a RunPython) after every RenameModel, in both directions."""
    if not apps.is_installed("django.contrib.contenttypes"):
        return
    if not any(isinstance(op, RenameModel) for m in plan.migrations for op in m.operations):
        return
    from django.contrib.contenttypes.management import inject_rename_contenttypes_operations

    pairs = [(migration, plan.backwards) for migration in plan.migrations]
    inject_rename_contenttypes_operations(plan=pairs, apps=pre_state().apps, using=plan.alias)


@contextmanager
def use_database(alias: str, database_settings: dict[str, Any]) -> Iterator[Any]:
    """Point the alias at another database (the scratch copy) for a while, so that
    everything Django does through the alias (schema editor, atomic(), RunPython's
    ORM, routers) lands there, and nothing reaches the target."""
    original = connections[alias]
    scratch = original.__class__(database_settings, alias)
    connections[alias] = scratch
    try:
        yield scratch
    finally:
        scratch.close()
        connections[alias] = original


class _Recorder:
    """Captures what the schema editor sends to the database, statement by statement."""

    def __init__(self, connection: Any, vendor: Vendor) -> None:
        self.connection = connection
        self.vendor = vendor
        self.in_editor = 0
        self.sink: list[str] | None = None
        self.python_sink: list[str] | None = None

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.python_sink is not None:
            self.python_sink.append(self.vendor.render_executed(self.connection, sql, params))
        elif self.in_editor and self.sink is not None:
            self.sink.append(self.vendor.render_executed(self.connection, sql, params))
        return execute(sql, params, many, context)

    def watch(self, editor: Any) -> None:
        original = editor.execute

        def execute(sql: Any, params: Any = ()) -> Any:
            self.in_editor += 1
            try:
                return original(sql, params)
            finally:
                self.in_editor -= 1

        editor.execute = execute


class _Compiler:
    def __init__(self, plan: Plan, connection: Any, vendor: Vendor) -> None:
        self.plan = plan
        self.connection = connection
        self.vendor = vendor
        self.recorder = _Recorder(connection, vendor)
        self.use_tz = bool(settings.USE_TZ)

    # -- one migration -------------------------------------------------------------

    def compile_migration(self, migration: Migration, state: ProjectState) -> Block:
        backwards = self.plan.backwards
        rows = recording.records_of(migration)
        block = Block(
            kind="migration",
            atomic=migration.atomic,
            migration=f"{migration.app_label}.{migration.name}",
            requires=sorted(f"{a}.{n}" for a, n in migration.dependencies if n not in ("__first__", "__latest__"))
            + sorted(f"{a}.{n}" for a, n in migration.dependencies if n in ("__first__", "__latest__")),
            records=[] if backwards else [list(r) for r in rows],
            deletes=[list(r) for r in rows] if backwards else [],
        )
        items = block.items
        items.extend(Control(sql) for sql in self.vendor.before_migration(atomic=migration.atomic))
        deferred: list[str] = []
        with self.connection.execute_wrapper(self.recorder):
            with self.connection.schema_editor(atomic=migration.atomic) as editor:
                self.recorder.watch(editor)
                if backwards:
                    self._unapply(migration, state, editor, items)
                else:
                    self._apply(migration, state, editor, items)
                self.recorder.sink = deferred
            self.recorder.sink = None
        if deferred:
            items.extend([Comment("--"), Comment("-- Deferred SQL of this migration"), Comment("--")])
            items.extend(Step(kind="schema", sql=terminate(sql)) for sql in deferred)
        items.extend(self._bookkeeping(rows, backwards))
        items.extend(Control(sql) for sql in self.vendor.after_migration(atomic=migration.atomic))
        return block

    def _bookkeeping(self, rows: list[tuple[str, str]], backwards: bool) -> list[Item]:
        verb = "unapplied" if backwards else "applied"
        items: list[Item] = [Comment("--"), Comment(f"-- Record {verb} in django_migrations"), Comment("--")]
        if backwards:
            items.append(Step(kind="record", sql=recording.delete_sql(self.connection, rows)))
        else:
            items.extend(
                Step(kind="record", sql=recording.insert_sql(self.connection, self.vendor, row, use_tz=self.use_tz))
                for row in rows
            )
        return items

    def _apply(self, migration: Migration, state: ProjectState, editor: Any, items: list[Item]) -> None:
        # Migration.apply, statement by statement and with Python kept out of the runbook.
        for index, operation in enumerate(migration.operations):
            old_state = state.clone()
            operation.state_forwards(migration.app_label, state)
            self._operation(migration, index, operation, editor, old_state, state, items)

    def _unapply(self, migration: Migration, state: ProjectState, editor: Any, items: list[Item]) -> None:
        # Migration.unapply: phase 1 builds the intermediate states, phase 2 runs in reverse.
        to_run: list[tuple[int, Operation, ProjectState, ProjectState]] = []
        new_state = state
        for index, operation in enumerate(migration.operations):
            new_state = new_state.clone()
            old_state = new_state.clone()
            operation.state_forwards(migration.app_label, new_state)
            to_run.insert(0, (index, operation, old_state, new_state))
        for index, operation, to_state, from_state in to_run:
            self._operation(migration, index, operation, editor, from_state, to_state, items)

    def _operation(
        self,
        migration: Migration,
        index: int,
        operation: Operation,
        editor: Any,
        from_state: ProjectState,
        to_state: ProjectState,
        items: list[Item],
    ) -> None:
        items.extend([Comment("--"), Comment(f"-- {describe(operation)}"), Comment("--")])
        op_index = _file_index(migration, index)
        before = len(items)
        statements: list[str] = []
        self.recorder.sink = statements
        atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)

        def run() -> None:
            self._database(migration, op_index, operation, editor, from_state, to_state, items, statements)

        if not editor.atomic_migration and atomic_operation:
            with transaction.atomic(editor.connection.alias):
                run()
        else:
            run()
        self._flush(statements, op_index, items)
        self.recorder.sink = None
        if len(items) == before:
            items.append(Comment("-- (no-op)"))
        else:
            frozen = _frozen_default(migration.app_label, operation, to_state)
            if frozen:
                note = f"-- NOTE: {frozen} was evaluated when this runbook was made; its value is fixed above."
                items.append(Comment(note))

    def _flush(self, statements: list[str], op_index: int, items: list[Item]) -> None:
        items.extend(Step(kind="schema", sql=terminate(sql), op=op_index) for sql in statements)
        statements.clear()

    def _database(
        self,
        migration: Migration,
        op_index: int,
        operation: Operation,
        editor: Any,
        from_state: ProjectState,
        to_state: ProjectState,
        items: list[Item],
        statements: list[str],
    ) -> None:
        backwards = self.plan.backwards
        app_label = migration.app_label
        if isinstance(operation, RunPython):
            self._flush(statements, op_index, items)
            self._python(migration, op_index, operation, editor, from_state, to_state, items)
        elif isinstance(operation, SeparateDatabaseAndState) and any(_python_operations(operation)):
            # SeparateDatabaseAndState's own loops, so that nested Python is kept out too.
            database_operations = operation.database_operations
            if not backwards:
                for inner in database_operations:
                    inner_to = from_state.clone()
                    inner.state_forwards(app_label, inner_to)
                    self._database(migration, op_index, inner, editor, from_state, inner_to, items, statements)
                    from_state = inner_to
            else:
                to_states = {}
                for inner in database_operations:
                    to_states[inner] = to_state
                    to_state = to_state.clone()
                    inner.state_forwards(app_label, to_state)
                for inner in reversed(database_operations):
                    from_state, to_state = to_state, to_states[inner]
                    self._database(migration, op_index, inner, editor, from_state, to_state, items, statements)
        elif backwards:
            operation.database_backwards(app_label, editor, from_state, to_state)
        else:
            operation.database_forwards(app_label, editor, from_state, to_state)

    def _python(
        self,
        migration: Migration,
        op_index: int,
        operation: RunPython,
        editor: Any,
        from_state: ProjectState,
        to_state: ProjectState,
        items: list[Item],
    ) -> None:
        backwards = self.plan.backwards
        if not router.allow_migrate(editor.connection.alias, migration.app_label, **operation.hints):
            return
        if _is_noop(operation, backwards):
            items.append(Comment("-- (no-op: RunPython.noop)"))
            return
        path = _callable_path(operation, backwards)
        direction = "backwards" if backwards else "forwards"
        items.append(Comment(f"-- MANUAL STEP: run {path} ({direction}) on a host with the project's code."))
        executed: list[str] = []
        error = None
        self.recorder.python_sink = executed
        run = operation.database_backwards if backwards else operation.database_forwards
        connection = editor.connection
        try:
            if connection.in_atomic_block:  # a savepoint keeps a failure from spoiling the migration
                with transaction.atomic(connection.alias):
                    run(migration.app_label, editor, from_state, to_state)
            else:
                run(migration.app_label, editor, from_state, to_state)
        except Exception as exc:  # noqa: BLE001 -- the empty scratch copy may break the code; shown, not fatal
            error = f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"
        finally:
            self.recorder.python_sink = None
        items.extend(_rehearsal_notes(executed, error))
        items.append(Step(kind="manual", op=op_index, callable=path))


def _is_savepoint(sql: str) -> bool:
    """byhand's own savepoint around the rehearsal of a RunPython is not the code's doing."""
    return sql.split(" ", 1)[0].upper() in ("SAVEPOINT", "RELEASE", "ROLLBACK")


def _rehearsal_notes(executed: list[str], error: str | None) -> list[Item]:
    notes: list[Item] = []
    executed = [sql for sql in executed if not _is_savepoint(sql)]
    if executed:
        notes.append(Comment("-- Rehearsal on the empty scratch copy executed (information only, never run):"))
        for sql in executed[:INFO_LIMIT]:
            notes.extend(Comment("--   " + line) for line in sql.split("\n"))
        if len(executed) > INFO_LIMIT:
            notes.append(Comment(f"--   ... and {len(executed) - INFO_LIMIT} more statements"))
    else:
        notes.append(Comment("-- Rehearsal on the empty scratch copy executed no SQL."))
    if error:
        notes.append(Comment(f"-- Rehearsal raised {error}"))
    return notes


def _project_state(plan: Plan, *, with_applied: bool) -> ProjectState:
    """The executor's own starting state (unmigrated apps, plus every applied migration)."""
    state: ProjectState = plan.executor._create_project_state(  # type: ignore[attr-defined]
        with_applied_migrations=with_applied
    )
    return state


def _states_backwards(plan: Plan) -> dict[Migration, ProjectState]:
    """Each migration's pre-state, computed as MigrationExecutor._migrate_all_backwards does."""
    executor = plan.executor
    to_run = set(plan.migrations)
    states: dict[Migration, ProjectState] = {}
    state = _project_state(plan, with_applied=False)
    applied = {
        executor.loader.graph.nodes[k] for k in executor.loader.applied_migrations if k in executor.loader.graph.nodes
    }
    full_plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    for migration, _ in full_plan:
        if not to_run:
            break
        if migration in to_run:
            if "apps" not in state.__dict__:
                state.apps  # noqa: B018 -- render once, as Django does
            states[migration] = state
            state = migration.mutate_state(state, preserve=True)
            to_run.remove(migration)
        elif migration in applied:
            migration.mutate_state(state, preserve=False)
    return states


def replacement_rows(plan: Plan) -> list[tuple[str, str]]:
    """Squash rows check_replacements() would write after this plan (outside the plan)."""
    recorded = set(plan.recorded)
    for migration in plan.migrations:
        rows = set(recording.records_of(migration))
        recorded = recorded - rows if plan.backwards else recorded | rows
    return sorted(
        key
        for key, migration in plan.loader.replacements.items()
        if key not in recorded and all(tuple(r) in recorded for r in migration.replaces)
    )


def compile_runbook(plan: Plan, *, manual_steps: bool = False, scratch_database: str | None = None) -> Runbook:
    """Rehearse the plan on a scratch copy of the target's schema and return its runbook.

    Raises ManualStepsRequired unless ``manual_steps`` is true and the plan holds
    Python operations; IrreversibleMigrations for a backwards plan that cannot run.
    """
    target = connections[plan.alias]
    vendor = get_vendor(target.vendor)
    if plan.backwards:
        _check_reversible(plan)
        states = _states_backwards(plan)
        _inject_contenttype_renames(plan, lambda: _project_state(plan, with_applied=True))
    else:
        state = _project_state(plan, with_applied=True)
        state.apps  # noqa: B018 -- render once, as migrate does before cloning
        state = state.clone()
        _inject_contenttype_renames(plan, lambda: state)
    if not manual_steps:
        steps = manual_steps_of(plan)
        if steps:
            raise ManualStepsRequired(steps)
    server = connections[scratch_database] if scratch_database else target
    if server.vendor != target.vendor:
        raise RehearsalError(
            f"the scratch alias '{server.alias}' is {server.vendor}, the target is {target.vendor}; "
            "the rehearsal needs the same vendor and server version."
        )
    scratch = vendor.make_scratch(target, server=server)
    try:
        with use_database(plan.alias, scratch.settings) as connection:
            connection.ensure_connection()  # its set-up queries are not the migration's
            vendor.prepare_scratch(connection)
            compiler = _Compiler(plan, connection, vendor)
            blocks = [] if plan.has_recorder_table else [_setup_block(compiler)]
            for migration in plan.migrations:
                try:
                    blocks.append(compiler.compile_migration(migration, states[migration] if plan.backwards else state))
                except DatabaseError as exc:
                    raise RehearsalError(
                        f"{migration.app_label}.{migration.name} failed on the scratch copy of the schema: "
                        f"{' '.join(str(exc).split())}. migrate would fail the same way on this database: "
                        "its schema does not match what django_migrations records."
                    ) from exc
            rows = replacement_rows(plan)
            if rows:
                blocks.append(_replacements_block(compiler, rows))
    finally:
        vendor.drop_scratch(scratch, server=server)
    return Runbook(header=_header(plan, vendor, scratch), preamble=_preamble(plan, vendor), blocks=blocks)


def _setup_block(compiler: _Compiler) -> Block:
    """django_migrations as Django's recorder would create it (the DDL comes from Django)."""
    block = Block(kind="setup", atomic=True, migration=None)
    block.items.extend(Control(sql) for sql in compiler.vendor.before_migration(atomic=True))
    block.items.extend(
        [Comment("--"), Comment("-- Create django_migrations, as Django's recorder does"), Comment("--")]
    )
    statements: list[str] = []
    with compiler.connection.execute_wrapper(compiler.recorder):
        with compiler.connection.schema_editor() as editor:
            compiler.recorder.watch(editor)
            compiler.recorder.sink = statements
            editor.create_model(MigrationRecorder.Migration)
        compiler.recorder.sink = None
    block.items.extend(Step(kind="setup", sql=terminate(sql)) for sql in statements)
    block.items.extend(Control(sql) for sql in compiler.vendor.after_migration(atomic=True))
    return block


def _replacements_block(compiler: _Compiler, rows: list[tuple[str, str]]) -> Block:
    block = Block(kind="replacements", atomic=True, records=[list(r) for r in rows])
    block.items.extend(Control(sql) for sql in compiler.vendor.before_migration(atomic=True))
    block.items.extend(
        [Comment("--"), Comment("-- Squashed migrations whose replaced migrations are all applied"), Comment("--")]
    )
    block.items.extend(
        Step(kind="record", sql=recording.insert_sql(compiler.connection, compiler.vendor, row, use_tz=compiler.use_tz))
        for row in rows
    )
    block.items.extend(Control(sql) for sql in compiler.vendor.after_migration(atomic=True))
    return block


def _header(plan: Plan, vendor: Vendor, scratch: Any) -> dict[str, Any]:
    return {
        "direction": "backwards" if plan.backwards else "forwards",
        "vendor": vendor.name,
        "server_version": scratch.server_version,
        "database": plan.alias,
        "target": plan.target,
        "django": django.get_version(),
        "byhand": __version__,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "against": scratch.fingerprint,
        "settings": {
            "DEFAULT_AUTO_FIELD": settings.DEFAULT_AUTO_FIELD,
            "USE_TZ": settings.USE_TZ,
            "TIME_ZONE": settings.TIME_ZONE,
        },
    }


def _preamble(plan: Plan, vendor: Vendor) -> list[Item]:
    direction = "backwards" if plan.backwards else "forwards"
    lines: list[Item] = [Comment(f"-- Plan ({len(plan.migrations)} migrations, {direction}):")]
    for migration in plan.migrations:
        notes = [] if migration.atomic else ["not atomic"]
        python = [p for op in migration.operations for p in _python_operations(op) if not _is_noop(p, plan.backwards)]
        if python:
            notes.append(f"{len(python)} manual step(s)")
        suffix = f"  ({', '.join(notes)})" if notes else ""
        lines.append(Comment(f"--   {migration.app_label}.{migration.name}{suffix}"))
    lines.extend(Control(sql) for sql in vendor.preamble())
    return lines
