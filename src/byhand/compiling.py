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
from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from byhand import __version__, recording
from byhand.exceptions import ManualStepsRequired, RehearsalError
from byhand.planning import (
    Plan,
    check_reversible,
    clone_state,
    describe,
    fewer_collections,
    file_index,
    inject_contenttype_renames,
    is_noop,
    manual_steps_of,
    project_state,
    python_operations,
    python_step_name,
    replacement_rows,
    states_backwards,
)
from byhand.rehearsing import (
    Deferred,
    DeferredFailure,
    StatementRecorder,
    check_on_scratch,
    scratch_copy,
    use_database,
)
from byhand.runbook import Block, Comment, Control, Item, Runbook, Step, terminate
from byhand.vendors import ScratchDatabase, Vendor, get_vendor

__all__ = ["compile_runbook", "scratch_started"]

#: At most this many statements of a RunPython's rehearsal are shown under its manual step.
INFO_LIMIT = 40


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


def _reads_no_state(operation: Operation) -> bool:
    """Operations whose database_forwards never looks at the state it is given, so the
    copy Migration.apply makes for them (a full clone of the rendered state) is waste:
    RunSQL, RunPython.noop (not even run here), state-only SeparateDatabaseAndState."""
    kind = type(operation)
    if kind is RunSQL:
        return True
    if kind is RunPython:
        return is_noop(operation, backwards=False)  # type: ignore[arg-type]
    return kind is SeparateDatabaseAndState and not operation.database_operations  # type: ignore[attr-defined]


def _is_djangos(operation: Operation) -> bool:
    """Django's own operations, which catch no database error: their statements may run
    in the background (a custom operation may catch the failure of its own statement)."""
    if isinstance(operation, RunPython):
        return False
    if type(operation) is SeparateDatabaseAndState:
        return all(_is_djangos(inner) for inner in operation.database_operations)
    return type(operation).__module__.startswith(("django.db.migrations.operations.", "django.contrib.postgres."))


class _Compiler:
    def __init__(self, plan: Plan, connection: Any, vendor: Vendor) -> None:
        self.plan = plan
        self.connection = connection
        self.vendor = vendor
        self.recorder = StatementRecorder(connection, vendor)
        self.use_tz = bool(settings.USE_TZ)

    # -- one migration -------------------------------------------------------------

    def compile_migration(self, migration: Migration, state: ProjectState) -> Block:
        backwards = self.plan.backwards
        rows = recording.records_of(migration)
        block = Block(
            kind="migration",
            atomic=migration.atomic,
            migration=f"{migration.app_label}.{migration.name}",
            requires=self._requires(migration),
            records=[] if backwards else [list(r) for r in rows],
            deletes=[list(r) for r in rows] if backwards else [],
            required_by=self._required_by(migration) if backwards else [],
        )
        items = block.items
        items.extend(Control(sql) for sql in self.vendor.before_migration(atomic=migration.atomic))
        self.recorder.label = str(block.migration)
        deferred: list[str] = []
        with self.connection.execute_wrapper(self.recorder):
            with self.connection.schema_editor(atomic=migration.atomic) as editor:
                self.recorder.watch(editor)
                if backwards:
                    self._unapply(migration, state, editor, items)
                else:
                    self._apply(migration, state, editor, items)
                self.recorder.sink = deferred
                self.recorder.deferrable = True  # the editor's deferred SQL, at its exit
            self.recorder.sink = None
            self.recorder.deferrable = False
        if deferred:
            items.extend([Comment("--"), Comment("-- Deferred SQL of this migration"), Comment("--")])
            items.extend(Step(kind="schema", sql=terminate(sql)) for sql in deferred)
        items.extend(self._bookkeeping(rows, backwards))
        items.extend(Control(sql) for sql in self.vendor.after_migration(atomic=migration.atomic))
        return block

    def _requires(self, migration: Migration) -> list[str]:
        """What must be applied first, from the graph: __first__/__latest__, run_before
        and squash replacements already resolved, as migrate sees them."""
        node = self.plan.loader.graph.node_map.get((migration.app_label, migration.name))
        parents = [p.key for p in node.parents] if node else list(migration.dependencies)
        return sorted(f"{app}.{name}" for app, name in parents)

    def _required_by(self, migration: Migration) -> list[str]:
        """What depends on ``migration`` in the graph: apply refuses to unapply it while
        one of them is still recorded."""
        node = self.plan.loader.graph.node_map.get((migration.app_label, migration.name))
        return sorted(f"{app}.{name}" for app, name in (c.key for c in node.children)) if node else []

    def _bookkeeping(self, rows: list[tuple[str, str]], backwards: bool) -> list[Item]:
        verb = "unapplied" if backwards else "applied"
        items: list[Item] = [Comment("--"), Comment(f"-- Record {verb} in django_migrations"), Comment("--")]
        if backwards:
            items.append(Step(kind="record", sql=recording.delete_sql(self.connection, self.vendor, rows)))
        else:
            items.extend(
                Step(kind="record", sql=recording.insert_sql(self.connection, self.vendor, row, use_tz=self.use_tz))
                for row in rows
            )
        return items

    def _apply(self, migration: Migration, state: ProjectState, editor: Any, items: list[Item]) -> None:
        # Migration.apply, statement by statement and with Python kept out of the runbook.
        for index, operation in enumerate(migration.operations):
            old_state = state if _reads_no_state(operation) else clone_state(state)
            operation.state_forwards(migration.app_label, state)
            self._operation(migration, index, operation, editor, old_state, state, items)

    def _unapply(self, migration: Migration, state: ProjectState, editor: Any, items: list[Item]) -> None:
        # Migration.unapply: phase 1 builds the intermediate states, phase 2 runs in reverse.
        to_run: list[tuple[int, Operation, ProjectState, ProjectState]] = []
        new_state = state
        for index, operation in enumerate(migration.operations):
            new_state = clone_state(new_state)
            old_state = clone_state(new_state)
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
        op_index = file_index(migration, index)
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
        elif isinstance(operation, SeparateDatabaseAndState) and any(python_operations(operation)):
            # SeparateDatabaseAndState's own loops, so that nested Python is kept out too.
            database_operations = operation.database_operations
            if not backwards:
                for inner in database_operations:
                    inner_to = clone_state(from_state)
                    inner.state_forwards(app_label, inner_to)
                    self._database(migration, op_index, inner, editor, from_state, inner_to, items, statements)
                    from_state = inner_to
            else:
                to_states = {}
                for inner in database_operations:
                    to_states[inner] = to_state
                    to_state = clone_state(to_state)
                    inner.state_forwards(app_label, to_state)
                for inner in reversed(database_operations):
                    from_state, to_state = to_state, to_states[inner]
                    self._database(migration, op_index, inner, editor, from_state, to_state, items, statements)
        else:
            self.recorder.deferrable = _is_djangos(operation)
            try:
                if backwards:
                    operation.database_backwards(app_label, editor, from_state, to_state)
                else:
                    operation.database_forwards(app_label, editor, from_state, to_state)
            finally:
                self.recorder.deferrable = False

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
        if is_noop(operation, backwards):
            items.append(Comment("-- (no-op: RunPython.noop)"))
            return
        path = python_step_name(operation, backwards)
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


@contextmanager
def scratch_started(database: str, *, scratch_database: str | None = None) -> Iterator[Callable[[], ScratchDatabase]]:
    """Start the schema-only scratch copy of ``database`` now, so that a server makes it
    while the caller loads the migrations and plans; yields what compile_runbook waits on.

    The copy is dropped on the way out, also on failure. When nothing asked for it (an
    empty plan, an error while planning), it is dropped unused and a failure to make it
    (no CREATEDB, say) is not reported: only a rehearsal needs it. SQLite's copy, a file
    made in a moment, is made on first use only.
    """
    target = connections[database]
    vendor = get_vendor(target.vendor)
    server = connections[scratch_database] if scratch_database else target
    if server.vendor != target.vendor:
        raise RehearsalError(
            f"the scratch alias '{server.alias}' is {server.vendor}, the target is {target.vendor}; "
            "the rehearsal needs the same vendor and server version."
        )
    with scratch_copy(vendor, target, server=server) as scratch:
        yield scratch


def compile_runbook(
    plan: Plan,
    *,
    manual_steps: bool = False,
    scratch_database: str | None = None,
    scratch: Callable[[], ScratchDatabase] | None = None,
) -> Runbook:
    """Rehearse the plan on a scratch copy of the target's schema and return its runbook.

    ``scratch`` is what scratch_started yielded for the plan's database, if the copy was
    started before planning; otherwise it is made here (on ``scratch_database``'s server,
    if given). Raises ManualStepsRequired unless ``manual_steps`` is true and the plan
    holds Python operations; IrreversibleMigrations for a backwards plan that cannot run.
    """
    if scratch is None:
        with scratch_started(plan.alias, scratch_database=scratch_database) as started:
            return compile_runbook(plan, manual_steps=manual_steps, scratch=started)
    vendor = get_vendor(connections[plan.alias].vendor)
    if plan.backwards:
        check_reversible(plan)
    with fewer_collections():
        state_before = _states(plan)  # Django's states, while the copy is being made
        if not manual_steps:
            _refuse_manual_steps(plan)  # after contenttypes injected its RenameContentType
        copy = scratch()
        with use_database(plan.alias, copy.settings) as scratch_db:
            scratch_db.ensure_connection()  # its set-up queries are not the migration's
            check_on_scratch(scratch_db, vendor, copy)
            vendor.prepare_scratch(scratch_db)
            compiler = _Compiler(plan, scratch_db, vendor)
            with _in_thread(compiler, enabled=vendor.rehearses_in_thread):
                blocks = [] if plan.has_recorder_table else [_setup_block(compiler)]
                blocks.extend(_compile_rehearsed(compiler, m, state_before(m)) for m in plan.migrations)
            rows = replacement_rows(plan)
            if rows:
                blocks.append(_replacements_block(compiler, rows))
    return Runbook(header=_header(plan, vendor, copy), preamble=_preamble(plan, vendor), blocks=blocks)


@contextmanager
def _in_thread(compiler: _Compiler, *, enabled: bool) -> Iterator[None]:
    """Where the vendor gains by it, the scratch copy runs the schema editor's statements
    in a thread while the next states are computed here (see rehearsing.Deferred)."""
    if not enabled:
        yield
        return
    deferred = compiler.recorder.deferred = Deferred(compiler.connection)
    try:
        with (
            compiler.vendor.twin(compiler.connection) as twin,
            deferred.installed(lambda: compiler.recorder.label, twin=twin),
        ):
            yield
    except DeferredFailure as failure:
        if not isinstance(failure.error, DatabaseError):
            raise failure.error from None
        raise _failed_on_scratch(failure.label, failure.error) from failure.error
    finally:
        compiler.recorder.deferred = None


def _states(plan: Plan) -> Callable[[Migration], ProjectState]:
    """The state each migration starts from, as the executor computes it.

    Forwards: one state, rendered once and evolved migration by migration (the
    compiler mutates it in place, as Migration.apply does). Backwards: each
    migration's own pre-state. Also injects contenttypes' RenameContentType.
    """
    if plan.backwards:
        states = states_backwards(plan)
        inject_contenttype_renames(plan, lambda: project_state(plan, with_applied=True))
        return states.__getitem__
    state = project_state(plan, with_applied=True)
    state.apps  # noqa: B018 -- render once, as migrate does before cloning
    state = clone_state(state)
    inject_contenttype_renames(plan, lambda: state)
    return lambda _migration: state


def _refuse_manual_steps(plan: Plan) -> None:
    steps = manual_steps_of(plan)
    if steps:
        raise ManualStepsRequired(steps)


def _compile_rehearsed(compiler: _Compiler, migration: Migration, state: ProjectState) -> Block:
    try:
        return compiler.compile_migration(migration, state)
    except DatabaseError as exc:
        raise _failed_on_scratch(f"{migration.app_label}.{migration.name}", exc) from exc


def _failed_on_scratch(migration: str, exc: BaseException) -> RehearsalError:
    return RehearsalError(
        f"{migration} failed on the scratch copy of the schema: {' '.join(str(exc).split())}. "
        "migrate would fail the same way on this database: its schema does not match what "
        "django_migrations records."
    )


def _setup_block(compiler: _Compiler) -> Block:
    """django_migrations as Django's recorder would create it (the DDL comes from Django)."""
    block = Block(kind="setup", atomic=True, migration=None)
    block.items.extend(Control(sql) for sql in compiler.vendor.before_migration(atomic=True))
    block.items.extend(
        [Comment("--"), Comment("-- Create django_migrations, as Django's recorder does"), Comment("--")]
    )
    statements: list[str] = []
    compiler.recorder.label = "the creation of django_migrations"
    with compiler.connection.execute_wrapper(compiler.recorder):
        with compiler.connection.schema_editor() as editor:
            compiler.recorder.watch(editor)
            compiler.recorder.sink = statements
            compiler.recorder.deferrable = True
            editor.create_model(MigrationRecorder.Migration)
        compiler.recorder.sink = None
        compiler.recorder.deferrable = False
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
        python = [p for op in migration.operations for p in python_operations(op) if not is_noop(p, plan.backwards)]
        if python:
            notes.append(f"{len(python)} manual step(s)")
        suffix = f"  ({', '.join(notes)})" if notes else ""
        lines.append(Comment(f"--   {migration.app_label}.{migration.name}{suffix}"))
    lines.extend(Control(sql) for sql in vendor.preamble())
    return lines
