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
from django.db import DatabaseError, connections
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from byhand import __version__
from byhand.exceptions import ManualStepsRequired, OnlineUnsupported, RehearsalError, UnsafeName
from byhand.hazards import KEY_CHANGE_NOTE  # written here, read back by review
from byhand.planning.history import Row, delete_sql, insert_sql, records_of
from byhand.planning.online import keys_dropped, put_online
from byhand.planning.operations import (
    check_reversible,
    foreign_sql_operations,
    inject_contenttype_renames,
    is_noop,
    manual_steps_of,
    python_operations,
)
from byhand.planning.plans import Plan, replacement_rows
from byhand.planning.recorder import observed_of
from byhand.planning.rehearsing import Rehearsal
from byhand.planning.scratch import check_on_scratch, scratch_started, use_database
from byhand.planning.statement_thread import BackgroundFailure
from byhand.planning.states import clone_state, fewer_collections, project_state, states_backwards
from byhand.runbook import (
    Block,
    Comment,
    Control,
    Item,
    Runbook,
    Step,
    escape_comment,
    has_control_character,
    observed_comment,
    terminate,
)
from byhand.vendors import ScratchDatabase, Vendor, get_vendor
from byhand.vendors.base import SCRATCH_PREFIX

__all__ = ["KEY_CHANGE_NOTE", "compile_runbook"]


def compile_runbook(
    plan: Plan,
    *,
    manual_steps: bool = False,
    scratch_database: str | None = None,
    scratch_prefix: str = SCRATCH_PREFIX,
    scratch: Callable[[], ScratchDatabase] | None = None,
    defaults_from_rehearsal: bool = False,
    on_key_change: Callable[[str], None] | None = None,
    online: bool = False,
) -> Runbook:
    """Rehearse the plan on a scratch copy of the target's schema and return its runbook.

    ``scratch`` is what scratch_started yielded for the plan's database, if the copy was
    started before planning; otherwise it is made here (on ``scratch_database``'s server,
    if given, its name starting with ``scratch_prefix``). Raises ManualStepsRequired unless
    ``manual_steps`` is true and the plan holds Python operations; IrreversibleMigrations for
    a backwards plan that cannot run; UnsafeName for a migration or app name with a control
    character. ``online``: write the online forms of the statements that have one
    (byhand.planning.online); OnlineUnsupported where the vendor has none.
    """
    _check_names(plan)
    if scratch is None:
        with scratch_started(plan.alias, scratch_database=scratch_database, prefix=scratch_prefix) as started:
            return compile_runbook(
                plan,
                manual_steps=manual_steps,
                scratch=started,
                defaults_from_rehearsal=defaults_from_rehearsal,
                on_key_change=on_key_change,
                online=online,
            )
    target = connections[plan.alias]
    vendor = get_vendor(target.vendor)
    if online and not vendor.online_forms:
        raise OnlineUnsupported(vendor.title)
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
            compiler = _Compiler(
                plan, scratch_db, vendor, target=target, from_rehearsal=defaults_from_rehearsal, online=online
            )
            with _failures_named(), compiler.rehearsal.recorder.threaded(enabled=vendor.rehearses_in_thread):
                blocks = [] if plan.has_recorder_table else [compiler.setup_block()]
                blocks.extend(compiler.migration_block(m, state_before(m)) for m in plan.migrations)
            rows = replacement_rows(plan)
            if rows:
                blocks.append(compiler.replacements_block(rows))
            exempt = vendor.online_exempt_tables(scratch_db) if online else set()
    key_changes = compiler.rehearsal.key_changes
    if on_key_change is not None:
        for change in key_changes:
            on_key_change(change)
    return _runbook(plan, vendor, copy, blocks, key_changes=key_changes, online=online, exempt=exempt)


def _runbook(
    plan: Plan,
    vendor: Vendor,
    copy: ScratchDatabase,
    blocks: list[Block],
    *,
    key_changes: list[str],
    online: bool,
    exempt: set[str],
) -> Runbook:
    """The runbook of the rehearsed blocks: their online forms (``online``; none on the
    ``exempt`` tables), what each statement did on the scratch copy above it, the header
    and the plan."""
    whole = {f"{m.app_label}.{m.name}": _whole(m) for m in plan.migrations} if online else {}
    dropped = [keys_dropped(block) for block in blocks]
    replaced = {
        block.migration: put_online(
            block,
            vendor,
            exempt=exempt,
            whole=whole.get(str(block.migration)),
            keys_dropped_later=set().union(*dropped[number + 1 :]),
        )
        for number, block in enumerate(blocks if online else [])
    }
    preamble = _preamble(plan, vendor, key_changes, replaced)
    for block in blocks:
        block.items = _said(block.items)
    header = _header(plan, vendor, copy)
    if online:
        header["online"] = True
    return Runbook(header=header, preamble=preamble, blocks=blocks)


def _whole(migration: Migration) -> str | None:
    """Why an atomic migration must stay one transaction under --online: SQL of its own."""
    foreign = [operation for op in migration.operations for operation in foreign_sql_operations(op)]
    if not migration.atomic or not foreign:
        return None
    names = ", ".join(sorted({type(operation).__name__ for operation in foreign}))
    return f"its {names} may rely on the migration's one transaction (a temporary table, SET LOCAL, a lock)"


def _said(items: list[Item]) -> list[Item]:
    """``items`` with a comment line above each step saying what it did on the scratch copy
    (known only once the rehearsal is over: a statement run in the statement thread is
    observed after its step is made)."""
    said: list[Item] = []
    for item in items:
        if isinstance(item, Step) and item.observed:
            said.append(Comment(observed_comment(item.observed)))
        said.append(item)
    return said


def _check_names(plan: Plan) -> None:
    """Refuse a name the runbook would write (in comments, markers and django_migrations'
    literals) that holds a control character: a line break in a file name would end the
    plan's comment line, and what follows would run."""
    on_disk = plan.loader.disk_migrations
    rows = [row for migration in plan.migrations for row in records_of(migration, on_disk=on_disk)]
    for app, name in [*rows, *replacement_rows(plan)]:
        dotted = f"{app}.{name}"
        if has_control_character(dotted):
            raise UnsafeName(dotted, shown=f"'{escape_comment(dotted)}'")


class _Compiler:
    """Blocks of the runbook, each rehearsed on the scratch connection."""

    def __init__(
        self, plan: Plan, connection: Any, vendor: Vendor, *, target: Any, from_rehearsal: bool, online: bool = False
    ) -> None:
        self.plan = plan
        self.connection = connection
        self.vendor = vendor
        # target: the database the runbook is for, read only by defaults that query it
        self.rehearsal = Rehearsal(
            connection,
            vendor,
            backwards=plan.backwards,
            target=target,
            defaults_from_rehearsal=from_rehearsal,
            online=online,
        )
        self.use_tz = bool(settings.USE_TZ)

    def migration_block(self, migration: Migration, state: ProjectState) -> Block:
        backwards = self.plan.backwards
        rows = records_of(migration, on_disk=self.plan.loader.disk_migrations)
        name = f"{migration.app_label}.{migration.name}"
        node = self.plan.loader.graph.node_map.get((migration.app_label, migration.name))
        # What must be applied first, from the graph (__first__/__latest__, run_before and
        # squash replacements resolved, as migrate sees them); backwards, what depends on it.
        parents = [p.key for p in node.parents] if node else list(migration.dependencies)
        children = [c.key for c in node.children] if node else []
        block = Block(
            kind="migration",
            atomic=migration.atomic,
            migration=name,
            requires=sorted(f"{app}.{n}" for app, n in parents),
            records=[] if backwards else [list(r) for r in rows],
            deletes=[list(r) for r in rows] if backwards else [],
            required_by=sorted(f"{app}.{n}" for app, n in children) if backwards else [],
        )
        try:
            items, deferred_sql = self.rehearsal.migration(migration, state)
        except DatabaseError as exc:
            raise _failed_on_scratch(name, exc) from exc
        if deferred_sql:
            items.extend([Comment("--"), Comment("-- Deferred SQL of this migration"), Comment("--")])
            items.extend(Step(kind="schema", sql=terminate(sql), observed=observed_of(sql)) for sql in deferred_sql)
        items.extend(self._bookkeeping(rows))
        block.items = self._transaction(items, atomic=migration.atomic)
        return block

    def setup_block(self) -> Block:
        """django_migrations as Django's recorder would create it (the DDL comes from Django)."""
        statements: list[str] = []
        recorder = self.rehearsal.recorder
        with recorder.recording("the creation of django_migrations"), recorder.capturing(statements, background=True):
            with self.connection.schema_editor() as editor:
                recorder.watch(editor)
                editor.create_model(MigrationRecorder.Migration)
        items: list[Item] = [Comment("--"), Comment("-- Create django_migrations, as Django's recorder does")]
        items.append(Comment("--"))
        items.extend(Step(kind="setup", sql=terminate(sql)) for sql in statements)
        return Block(kind="setup", atomic=True, migration=None, items=self._transaction(items, atomic=True))

    def replacements_block(self, rows: list[Row]) -> Block:
        """The squashes check_replacements() would record after the plan."""
        items: list[Item] = [Comment("--"), Comment("-- Squashed migrations whose replaced migrations are all applied")]
        items.append(Comment("--"))
        items.extend(self._inserts(rows))
        return Block(
            kind="replacements",
            atomic=True,
            records=[list(r) for r in rows],
            items=self._transaction(items, atomic=True),
        )

    def _transaction(self, items: list[Item], *, atomic: bool) -> list[Item]:
        """``items`` between the vendor's control statements: BEGIN/COMMIT for an atomic
        migration where DDL rolls back (Django's own ``can_rollback_ddl``)."""
        transaction = atomic and bool(self.connection.features.can_rollback_ddl)
        before = [Control(sql) for sql in self.vendor.before_migration(transaction=transaction)]
        after = [Control(sql) for sql in self.vendor.after_migration(transaction=transaction)]
        return [*before, *items, *after]

    def _bookkeeping(self, rows: list[Row]) -> list[Item]:
        backwards = self.plan.backwards
        verb = "unapplied" if backwards else "applied"
        items: list[Item] = [Comment("--"), Comment(f"-- Record {verb} in django_migrations"), Comment("--")]
        if backwards:
            items.append(Step(kind="record", sql=delete_sql(self.connection, self.vendor, rows)))
        else:
            items.extend(self._inserts(rows))
        return items

    def _inserts(self, rows: list[Row]) -> list[Item]:
        return [
            Step(kind="record", sql=insert_sql(self.connection, self.vendor, row, use_tz=self.use_tz)) for row in rows
        ]


@contextmanager
def _failures_named() -> Iterator[None]:
    """A statement that failed in the statement thread, named with its migration."""
    try:
        yield
    except BackgroundFailure as failure:
        if not isinstance(failure.error, DatabaseError):
            raise failure.error from None
        raise _failed_on_scratch(failure.label, failure.error) from failure.error


def _failed_on_scratch(migration: str, exc: BaseException) -> RehearsalError:
    return RehearsalError(
        f"{migration} failed on the scratch copy of the schema: {' '.join(str(exc).split())}. "
        "migrate would fail the same way on this database: its schema does not match what "
        "django_migrations records."
    )


def _states(plan: Plan) -> Callable[[Migration], ProjectState]:
    """The state each migration starts from, as the executor computes it.

    Forwards: one state, rendered once and evolved migration by migration (the
    rehearsal mutates it in place, as Migration.apply does). Backwards: each
    migration's own pre-state. Also injects contenttypes' RenameContentType.
    """
    if plan.backwards:
        states = states_backwards(plan)
        inject_contenttype_renames(plan, lambda: project_state(plan.executor, with_applied=True))
        return states.__getitem__
    state = project_state(plan.executor, with_applied=True)
    state.apps  # noqa: B018 -- render once, as migrate does before cloning
    state = clone_state(state)
    inject_contenttype_renames(plan, lambda: state)
    return lambda _migration: state


def _refuse_manual_steps(plan: Plan) -> None:
    steps = manual_steps_of(plan)
    if steps:
        raise ManualStepsRequired(steps)


def _header(plan: Plan, vendor: Vendor, scratch: ScratchDatabase) -> dict[str, Any]:
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


def _preamble(plan: Plan, vendor: Vendor, key_changes: list[str], replaced: dict[str | None, int]) -> list[Item]:
    direction = "backwards" if plan.backwards else "forwards"
    count = len(plan.migrations)
    lines: list[Item] = [Comment(f"-- Plan ({count} migration{'' if count == 1 else 's'}, {direction}):")]
    for migration in plan.migrations:
        online = replaced.get(f"{migration.app_label}.{migration.name}", 0)
        notes = [f"online: {online} statement(s) in safe forms, not atomic"] if online else []
        notes += [] if migration.atomic or online else ["not atomic"]
        python = [p for op in migration.operations for p in python_operations(op) if not is_noop(p, plan.backwards)]
        if python:
            notes.append(f"{len(python)} manual step(s)")
        suffix = f"  ({', '.join(notes)})" if notes else ""
        lines.append(Comment(f"--   {migration.app_label}.{migration.name}{suffix}"))
    if key_changes:
        lines.append(Comment(f"-- NOTE: {KEY_CHANGE_NOTE}:"))
        lines.extend(Comment(f"--   {change}") for change in key_changes)
    lines.extend(Control(sql) for sql in vendor.preamble())
    return lines
