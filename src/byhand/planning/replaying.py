"""What the pending migrations do on verify's scratch copy: applied one by one (what each
creates or changes), then unapplied again, as an ordinary ``migrate APP OLDER`` does
(the names Django's own backwards gives what it makes again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from byhand.planning.schema import Schema, compare_schemas, find_object, snapshot
from byhand.planning.states import clone_state

__all__ = ["Pending", "apply_pending", "unapply_pending"]


@dataclass
class Pending:
    """The pending migrations as the scratch copy ran them."""

    #: (table, what) -> the pending migration that would create or change it.
    found: dict[tuple[str, str], str] = field(default_factory=dict)
    #: The same keys: the object as that migration leaves it.
    made: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: With keep_states: the migrations applied, in order (all of them unless one
    #: failed), each with the state before it, as unapply_pending needs them.
    applied: list[tuple[Migration, ProjectState]] = field(default_factory=list)
    failed: bool = False
    #: The scratch copy's schema after the last one applied.
    schema: Schema = field(default_factory=dict)


def apply_pending(
    executor: MigrationExecutor,
    connection: Any,
    pending: list[Migration],
    state: ProjectState,
    *,
    ignore: set[str],
    before: Schema,
    keep_states: bool = False,
    wanted: set[tuple[str, str]] | None = None,
) -> Pending:
    """(table, what) -> the pending migration that would create or change it, and the
    object as that migration leaves it, found by applying the pending migrations one by
    one to the scratch copy; with ``keep_states``, the state before each too. With
    ``wanted``, no further migration is applied once each of those keys is found (what
    the migration that found it does is then known whole)."""
    result = Pending(schema=before)
    for migration in pending:
        if wanted is not None and wanted <= result.found.keys():
            break
        executed: list[str] = []
        earlier = clone_state(state) if keep_states else state  # apply_migration changes ``state`` itself
        try:
            with connection.execute_wrapper(_keeping(executed)):
                state = executor.apply_migration(state, migration)
        except Exception:  # noqa: BLE001 -- a pending migration that fails here explains nothing
            result.failed = True
            break
        if keep_states:
            result.applied.append((migration, earlier))
        # Only what the migration's SQL names is introspected again.
        now = snapshot(connection, ignore=ignore, since=result.schema, touched="\n".join(executed))
        for difference in compare_schemas(result.schema, now):
            key = (difference.table, difference.what)
            if difference.kind in ("extra", "changed", "renamed") and key not in result.found:
                result.found[key] = f"{migration.app_label}.{migration.name}"
                result.made[key] = find_object(now, difference.table, difference.what)
        result.schema = now
    return result


def unapply_pending(
    executor: MigrationExecutor, connection: Any, pending: Pending, *, ignore: set[str]
) -> Schema | None:
    """The scratch copy's schema once every pending migration applied is unapplied again,
    last first, by Django's own executor: the recorded set as an ordinary ``migrate APP
    OLDER`` leaves it after ``migrate``. None when a pending migration failed forwards, or
    one cannot be unapplied (irreversible): then there is no such path to compare with."""
    if pending.failed or not pending.applied:
        return None
    executed: list[str] = []
    try:
        with connection.execute_wrapper(_keeping(executed)):
            for migration, earlier in reversed(pending.applied):
                executor.unapply_migration(earlier, migration)
    except Exception:  # noqa: BLE001 -- no backwards path, nothing to compare with
        return None
    return snapshot(connection, ignore=ignore, since=pending.schema, touched="\n".join(executed))


def _keeping(executed: list[str]) -> Callable[..., Any]:
    """An execute wrapper that keeps the text of each statement in ``executed``."""

    def keep(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append(str(sql))
        return execute(sql, params, many, context)

    return keep
