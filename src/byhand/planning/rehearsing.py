"""One migration rehearsed on the scratch copy, as Migration.apply / unapply would run it:
its operations through Django's own schema editor, what the editor sends recorded as
the runbook's statements, its Python kept out of the runbook as manual steps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from byhand.exceptions import RehearsalError
from byhand.markers import is_one_select
from byhand.planning.operations import describe, file_index, is_noop, python_operations, python_step_name
from byhand.planning.recorder import StatementRecorder, observed_of
from byhand.planning.states import clone_state
from byhand.runbook import Comment, Item, Read, Step, json_rows, terminate
from byhand.vendors import Vendor

__all__ = ["INFO_LIMIT", "Rehearsal", "is_djangos"]

#: At most this many statements of a RunPython's rehearsal are shown under its manual step.
INFO_LIMIT = 40

#: An operation with the states it goes from and to, in the order the executor runs them.
Planned = tuple[int, Operation, ProjectState, ProjectState]


@dataclass
class _Operation:
    """One top-level operation being rehearsed: where its items and statements go."""

    migration: Migration
    op_index: int  # its index in the migration file
    editor: Any
    items: list[Item]
    statements: list[str] = field(default_factory=list)

    def flush(self) -> None:
        """The statements recorded so far become the operation's steps."""
        self.items.extend(
            Step(kind="schema", sql=terminate(sql), op=self.op_index, observed=observed_of(sql))
            for sql in self.statements
        )
        self.statements.clear()


class Rehearsal:
    """Rehearses migrations on ``connection`` (the scratch copy), recording what they send.

    A field default that queries the database (pulpcore's ``get_domain_pk()``) is not
    taken from the scratch copy, which holds no data of the target's: it is read from
    ``target`` (the database the runbook is for) in a read-only transaction, unless an
    earlier step of the plan may change what it reads (a manual step or RunSQL naming a
    table it reads), and then the plan is refused, or with ``defaults_from_rehearsal`` the
    value is the scratch copy's, with a WARNING (_DefaultReads)."""

    def __init__(
        self,
        connection: Any,
        vendor: Vendor,
        *,
        backwards: bool,
        target: Any = None,
        defaults_from_rehearsal: bool = False,
        online: bool = False,
    ) -> None:
        self.connection = connection
        self.vendor = vendor
        self.backwards = backwards
        self.recorder = StatementRecorder(connection, vendor)
        if target is not None and online:  # what only --online's forms need: not on every run
            with target.cursor() as cursor:
                self.recorder.observer.read_target(cursor)
        self.reads = _DefaultReads(vendor, target, from_rehearsal=defaults_from_rehearsal)
        #: Primary keys whose type the plan changes, each with the tables its statements alter.
        self.key_changes: list[str] = []

    def migration(self, migration: Migration, state: ProjectState) -> tuple[list[Item], list[str]]:
        """The items of ``migration``'s operations (comments, steps, manual steps) and the
        deferred SQL its schema editor ran at the end. Forwards, ``state`` evolves in place."""
        items: list[Item] = []
        deferred_sql: list[str] = []
        recorder = self.recorder
        label = f"{migration.app_label}.{migration.name}"
        # What the editor runs outside an operation (its deferred SQL, at its exit) is kept apart.
        with recorder.recording(label), recorder.capturing(deferred_sql, background=True):
            with self.connection.schema_editor(atomic=migration.atomic) as editor:
                recorder.watch(editor)
                self.reads.watch(editor, recorder, label)
                planned = self._backwards(migration, state) if self.backwards else self._forwards(migration, state)
                for index, operation, from_state, to_state in planned:
                    op = _Operation(migration, file_index(migration, index), editor, items)
                    self._operation(op, operation, from_state, to_state)
        return items, deferred_sql

    def _forwards(self, migration: Migration, state: ProjectState) -> Iterator[Planned]:
        # Migration.apply: one state, evolved in place operation by operation.
        for index, operation in enumerate(migration.operations):
            old_state = state if _reads_no_state(operation) else clone_state(state)
            operation.state_forwards(migration.app_label, state)
            yield index, operation, old_state, state

    def _backwards(self, migration: Migration, state: ProjectState) -> list[Planned]:
        # Migration.unapply: phase 1 builds the intermediate states, phase 2 runs in reverse.
        to_run: list[Planned] = []
        new_state = state
        for index, operation in enumerate(migration.operations):
            new_state = clone_state(new_state)
            old_state = clone_state(new_state)
            operation.state_forwards(migration.app_label, new_state)
            to_run.insert(0, (index, operation, new_state, old_state))
        return to_run

    def _operation(
        self, op: _Operation, operation: Operation, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        items = op.items
        items.extend([Comment("--"), Comment(f"-- {describe(operation)}"), Comment("--")])
        before = len(items)
        migration, editor = op.migration, op.editor
        atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
        with self.recorder.capturing(op.statements):
            if not editor.atomic_migration and atomic_operation:
                with transaction.atomic(editor.connection.alias):
                    self._database(op, operation, from_state, to_state)
            else:
                self._database(op, operation, from_state, to_state)
            op.flush()
        reads, records = self.reads.taken(), self.reads.recorded()
        if len(items) == before:
            items.append(Comment("-- (no-op)"))
            return
        changed = _key_type_change(migration.app_label, operation, from_state, to_state)
        if changed:
            tables = list(
                dict.fromkeys(_ALTERED.findall(" ".join(i.sql for i in items[before:] if isinstance(i, Step))))
            )
            altered = f": altered: {', '.join(tables)}" if tables else ""
            self.key_changes.append(f"{migration.app_label}.{migration.name}: {changed}{altered}")
        if isinstance(operation, RunSQL):
            label = f"{migration.app_label}.{migration.name} operation {op.op_index} (RunSQL)"
            self.reads.data_step(label, [item.sql for item in items[before:] if isinstance(item, Step)])
        frozen = _frozen_default(migration.app_label, operation, to_state)
        if frozen and reads:
            items.extend(_read_notes(frozen, reads))
        elif frozen:
            note = f"-- NOTE: {frozen} was evaluated when this runbook was made; its value is fixed above."
            items.append(Comment(note))
        items.extend(_read_markers(frozen or "a field default", records, op=op.op_index, vendor=self.vendor))

    def _database(self, op: _Operation, operation: Operation, from_state: ProjectState, to_state: ProjectState) -> None:
        app_label = op.migration.app_label
        if isinstance(operation, RunPython):
            op.flush()
            self._python(op, operation, from_state, to_state)
        elif isinstance(operation, SeparateDatabaseAndState) and any(python_operations(operation)):
            for inner, inner_from, inner_to in self._separate(app_label, operation, from_state, to_state):
                self._database(op, inner, inner_from, inner_to)
        else:
            with self.recorder.in_background(is_djangos(operation)):
                if self.backwards:
                    operation.database_backwards(app_label, op.editor, from_state, to_state)
                else:
                    operation.database_forwards(app_label, op.editor, from_state, to_state)

    def _separate(
        self, app_label: str, operation: SeparateDatabaseAndState, from_state: ProjectState, to_state: ProjectState
    ) -> Iterator[tuple[Operation, ProjectState, ProjectState]]:
        """SeparateDatabaseAndState's own loops, so that nested Python is kept out too."""
        database_operations = operation.database_operations
        if not self.backwards:
            for inner in database_operations:
                inner_to = clone_state(from_state)
                inner.state_forwards(app_label, inner_to)
                yield inner, from_state, inner_to
                from_state = inner_to
            return
        to_states = {}
        for inner in database_operations:
            to_states[inner] = to_state
            to_state = clone_state(to_state)
            inner.state_forwards(app_label, to_state)
        for inner in reversed(database_operations):
            from_state, to_state = to_state, to_states[inner]
            yield inner, from_state, to_state

    def _python(self, op: _Operation, operation: RunPython, from_state: ProjectState, to_state: ProjectState) -> None:
        """A manual step, with what its code executed on the empty scratch copy shown above it."""
        backwards, editor, app_label = self.backwards, op.editor, op.migration.app_label
        if not router.allow_migrate(editor.connection.alias, app_label, **operation.hints):
            return
        if is_noop(operation, backwards):
            op.items.append(Comment("-- (no-op: RunPython.noop)"))
            return
        path = python_step_name(operation, backwards)
        direction = "backwards" if backwards else "forwards"
        op.items.append(Comment(f"-- MANUAL STEP: run {path} ({direction}) on a host with the project's code."))
        executed: list[str] = []
        error = None
        run = operation.database_backwards if backwards else operation.database_forwards
        connection = editor.connection
        try:
            with self.recorder.capturing_python(executed):
                if connection.in_atomic_block:  # a savepoint keeps a failure from spoiling the migration
                    with transaction.atomic(connection.alias):
                        run(app_label, editor, from_state, to_state)
                else:
                    run(app_label, editor, from_state, to_state)
        except Exception as exc:  # noqa: BLE001 -- the empty scratch copy may break the code; shown, not fatal
            error = f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"
        label = f"{op.migration.app_label}.{op.migration.name}:{op.op_index}"
        self.reads.data_step(f"the manual step {label} ({path})", executed)
        op.items.extend(_rehearsal_notes(executed, error))
        op.items.append(Step(kind="manual", op=op.op_index, callable=path))


class _DefaultReads:
    """Field defaults that query the database, read from the target instead of the scratch
    copy; or, when a step earlier in the plan may change what they read, refused (or with
    ``from_rehearsal``, taken from the scratch copy, where the rehearsal ran that step)."""

    def __init__(self, vendor: Vendor, target: Any, *, from_rehearsal: bool = False) -> None:
        self.vendor = vendor
        self.target = target
        self.from_rehearsal = from_rehearsal
        self._data_steps: list[tuple[str, list[str]]] = []  # (what, the SQL it ran on the scratch copy)
        self._taken: list[tuple[str, str | None]] = []  # (query, the step that made its data, if any)
        self._recorded: dict[str, tuple[str, list[list[Any]]]] = {}  # what the target gave: (query, rows)

    def data_step(self, what: str, statements: list[str]) -> None:
        """A step of the plan that may change data: a manual step (``statements``: what its
        rehearsal executed) or RunSQL. It may change the tables its statements name."""
        self._data_steps.append((what, statements))

    def taken(self) -> list[tuple[str, str | None]]:
        """The queries read since the last call, each with the plan's step that made its
        data on the scratch copy (None: read from the target)."""
        taken, self._taken = self._taken, []
        return list(dict.fromkeys(taken))  # Django evaluates a default more than once

    def recorded(self) -> list[tuple[str, list[list[Any]]]]:
        """The queries read from the target since the last call, as executed there (their
        parameters bound), each with the rows it returned (json_rows), for apply to read again."""
        recorded, self._recorded = list(self._recorded.values()), {}
        return recorded

    def watch(self, editor: Any, recorder: StatementRecorder, label: str) -> None:
        """``editor``'s field defaults: those that query the database come from the target."""
        original = editor.effective_default

        def effective_default(field: Any) -> Any:
            reads: list[str] = []
            with recorder.capturing_python(reads):
                try:
                    value = original(field)
                except Exception:
                    if not reads:
                        raise
                    value = _FAILED
            if not reads:
                return value
            reads = [" ".join(sql.split()) for sql in reads]
            step = self._changing(reads)
            if step is not None and self.from_rehearsal and value is not _FAILED:
                self._taken.extend((sql, step) for sql in reads)
                return value
            raw = self._from_target(editor, field, label, reads, step)
            return field.get_db_prep_save(raw, editor.connection)

        editor.effective_default = effective_default

    def _from_target(self, editor: Any, field: Any, label: str, reads: list[str], step: str | None) -> Any:
        model = getattr(getattr(field, "model", None), "_meta", None)
        what = f"the default of {getattr(model, 'model_name', '?')}.{field.name} in {label}"
        query = reads[0] if len(reads) == 1 else f"{reads[0]} and {len(reads) - 1} more"
        if step is not None:
            raise RehearsalError(
                f"{what} reads the database ({query}), and {step}, earlier in this plan, may change "
                "what it reads: neither the scratch copy nor the database holds now the value it would "
                f"read when the runbook is applied. Write the runbook up to the migration before {label}, "
                "apply it with its manual steps, then write the runbook for the rest; or, if that step makes "
                "the same value on every database (serial keys of a fresh install, not random UUIDs), pass "
                "--defaults-from-rehearsal to write the value it made on the scratch copy (nothing was written)."
            )
        if self.target is None:
            raise RehearsalError(f"{what} reads the database ({query}), and no target database was given.")
        alias = editor.connection.alias
        scratch, connections[alias] = connections[alias], self.target
        start, undo = self.vendor.read_only
        executed: list[str] = []

        def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            result = execute(sql, params, many, context)
            executed.append(self.vendor.render_executed(self.target, sql, params))
            return result

        try:
            with transaction.atomic(using=alias):
                try:
                    with self.target.cursor() as cursor:
                        cursor.execute(start)
                    with self.target.execute_wrapper(capture):
                        value = editor._effective_default(field)
                    rows = self._rows(executed)
                finally:  # whatever the default did is undone
                    transaction.set_rollback(True, using=alias)
        except Exception as exc:  # the default's own code: anything may fail
            raise RehearsalError(
                f"{what} reads the database ({query}); read on the target database (read-only, as the "
                f"value migrate would use), it failed: {type(exc).__name__}: {' '.join(str(exc).split())}. "
                "Its value must be in the database when the runbook is made: a default that writes "
                "(get_or_create), or that reads a table this plan creates, cannot be; make that data first "
                "(apply the runbook up to the migration before, with its manual steps), then write the rest "
                "(nothing was written)."
            ) from exc
        finally:
            if undo is not None:
                with self.target.cursor() as cursor:
                    cursor.execute(undo)
            connections[alias] = scratch
        self._taken.extend((sql, None) for sql in reads)
        self._recorded.update(((query + repr(result)), (query, result)) for query, result in rows)
        return value

    def _rows(self, executed: list[str]) -> list[tuple[str, list[list[Any]]]]:
        """Each query the default executed on the target, run again in its transaction: the
        rows it returned, as JSON values."""
        rows = []
        for query in dict.fromkeys(sql for sql in executed if not _is_savepoint(sql)):
            with self.target.cursor() as cursor:
                cursor.execute(query)
                rows.append((query, json_rows(cursor.fetchall()) if cursor.description else []))
        return rows

    def _changing(self, reads: list[str]) -> str | None:
        """The data steps of the plan so far that may change what ``reads`` read, named
        together ("A, B and C"), or None."""
        tables = {name.lower() for sql in reads for name in _TABLE_READ.findall(sql)}
        steps = [
            what
            for what, statements in self._data_steps
            if any(re.search(rf"\b{re.escape(table)}\b", " ".join(statements).lower()) for table in tables)
        ]
        return " and ".join([", ".join(steps[:-1]), steps[-1]] if len(steps) > 1 else steps) or None


#: A default whose code failed on the scratch copy (it found no row there).
_FAILED = object()


#: The tables a query reads, roughly: the names after FROM and JOIN, quoted or not.
_TABLE_READ = re.compile(r"\b(?:FROM|JOIN)\s+[`\"\[]?(\w+)", re.IGNORECASE)


#: The tables a statement alters (quoted or not), or that SQLite remakes (CREATE TABLE new__...).
_ALTERED = re.compile(r"\b(?:ALTER TABLE [`\"]?(?!new__)|CREATE TABLE [`\"]?new__)(\w+)", re.IGNORECASE)


def _key_type_change(app_label: str, operation: Operation, from_state: ProjectState, to_state: ProjectState) -> str:
    """'table.column: AutoField -> BigAutoField' when ``operation`` changes the type of a
    model's primary key (Django then alters every foreign key column that refers to it)."""
    model_name, field_name = getattr(operation, "model_name_lower", ""), getattr(operation, "name", "")
    before = from_state.models.get((app_label, model_name))
    after = to_state.models.get((app_label, model_name))
    if before is None or after is None or field_name not in before.fields or field_name not in after.fields:
        return ""
    old, new = before.fields[field_name], after.fields[field_name]
    if not new.primary_key or old.get_internal_type() == new.get_internal_type():
        return ""
    table = after.options.get("db_table") or f"{app_label}_{model_name}"
    column = new.db_column or field_name
    return f"{table}.{column} {old.get_internal_type()} -> {new.get_internal_type()}"


def _read_notes(frozen: str, reads: list[tuple[str, str | None]]) -> list[Item]:
    """Where a default that queried the database took its value from, under its statement."""
    notes: list[Item] = []
    for query, step in reads:
        if step is None:
            notes.append(Comment(f"-- NOTE: {frozen} read the target database when this runbook was made ({query});"))
            notes.append(Comment("--   its value is fixed above: write the runbook again if that data changes first."))
        else:
            notes.append(Comment(f"-- WARNING: {frozen} read the scratch copy ({query}) after {step} made its data"))
            notes.append(Comment("--   there (--defaults-from-rehearsal): the value above is right only if that step"))
            notes.append(Comment("--   makes the same on the target."))
    return notes


def _read_markers(default: str, records: list[tuple[str, list[list[Any]]]], *, op: int, vendor: Vendor) -> list[Item]:
    """A Read marker for each query a default ran on the target, for apply to run again; a
    WARNING for one it cannot run again safely (not one plain SELECT)."""
    items: list[Item] = []
    for query, rows in records:
        if is_one_select(query, vendor):
            items.append(Read(query=query, rows=rows, default=default, op=op))
        else:
            items.append(Comment(f"-- WARNING: apply cannot check that {query[:200]} still gives what it gave:"))
            items.append(Comment("--   it is not one plain SELECT. Check it by hand before applying."))
    return items


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


def is_djangos(operation: Operation) -> bool:
    """Django's own operations, which catch no database error: their statements may run
    in the background (a custom operation may catch the failure of its own statement)."""
    if isinstance(operation, RunPython):
        return False
    if type(operation) is SeparateDatabaseAndState:
        return all(is_djangos(inner) for inner in operation.database_operations)
    return type(operation).__module__.startswith(("django.db.migrations.operations.", "django.contrib.postgres."))


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
