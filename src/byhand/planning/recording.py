"""``byhand record`` / ``unrecord``: write a migration's django_migrations rows by hand, as
Django writes them (squashes: the replaced names and the squash), checked against the
graph, journaled."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from byhand.exceptions import PlanError
from byhand.operating.journal import Entry, Journal
from byhand.operating.run_lock import locked_target
from byhand.planning.history import Row, delete_sql, insert_sql, records_of
from byhand.planning.plans import check_app, find_migration
from byhand.planning.verifying import DriftReport
from byhand.vendors import get_vendor

__all__ = ["RecordChange", "check_effect", "plan_record", "write_record"]


@dataclass
class RecordChange:
    """What ``byhand record`` / ``unrecord`` would write, and why it would be refused."""

    migration: str  # "app.name"
    unrecord: bool
    rows: list[Row]  # the rows to insert (missing ones) or delete (present ones)
    statements: list[str]
    problems: list[str] = field(default_factory=list)


def plan_record(*, database: str, app_label: str, name: str, unrecord: bool) -> RecordChange:
    """The rows to record (or unrecord) for one migration, squash-aware, and the problems
    that refuse it without --force: dependencies not recorded, dependents still recorded."""
    connection = connections[database]
    loader = MigrationLoader(connection)
    check_app(loader, app_label)
    key = find_migration(loader, app_label, name)
    migration = loader.disk_migrations[key]
    recorder = MigrationRecorder(connection)
    recorded = set(recorder.applied_migrations()) if recorder.has_table() else set()
    applied = set(loader.applied_migrations) | recorded
    rows = records_of(migration, on_disk=loader.disk_migrations)
    dotted = f"{key[0]}.{key[1]}"
    vendor = get_vendor(connection.vendor)
    node = loader.graph.node_map.get(key)
    if unrecord:
        present = [row for row in rows if row in recorded]
        if not present:
            raise PlanError(f"{dotted} is not recorded in django_migrations of '{database}': nothing to unrecord.")
        change = RecordChange(dotted, True, present, [delete_sql(connection, vendor, present)])
        dependents = sorted(f"{a}.{n}" for a, n in (c.key for c in node.children) if (a, n) in applied) if node else []
        if dependents:
            change.problems.append(f"recorded migrations depend on it: {', '.join(dependents)}")
        return change
    missing_rows = [row for row in rows if row not in recorded]
    if not missing_rows:
        raise PlanError(f"{dotted} is already recorded in django_migrations of '{database}': nothing to record.")
    use_tz = bool(settings.USE_TZ)
    statements = [insert_sql(connection, vendor, row, use_tz=use_tz) for row in missing_rows]
    change = RecordChange(dotted, False, missing_rows, statements)
    parents = (
        [p.key for p in node.parents] if node else [d for d in migration.dependencies if not d[1].startswith("__")]
    )
    missing = sorted(f"{a}.{n}" for a, n in parents if (a, n) not in applied)
    if missing:
        change.problems.append(f"its dependencies are not recorded: {', '.join(missing)}")
    return change


def write_record(change: RecordChange, *, database: str, force: str | None, journal_table: str) -> None:
    """Write ``change`` in one transaction with its journal row (who, and why if forced);
    refuse it while it has problems, unless ``force`` gives the reason."""
    if change.problems and force is None:
        listing = "; ".join(change.problems)
        verb = "unrecord" if change.unrecord else "record"
        raise PlanError(
            f"refusing to {verb} {change.migration}: {listing}. If the database really is in that state, "
            f"run again with --force REASON (the reason is kept in {journal_table})."
        )
    connection = connections[database]
    vendor = get_vendor(connection.vendor)
    params = vendor.params_from_settings(connection.settings_dict)
    with locked_target(vendor, params, application="byhand record") as target:
        if not change.unrecord:
            MigrationRecorder(connection).ensure_schema()  # Django's own DDL, as migrate would
        try:
            journal = Journal(target, table=journal_table, checksum="-")
            if not journal.exists():
                journal.create()
            target.begin()
            for statement in change.statements:
                target.execute(statement)
            detail = {"rows": change.rows, "reason": force, "overridden": change.problems}
            status = "forced" if change.problems else "done"
            event = "unrecord" if change.unrecord else "record"
            journal.write(Entry(event=event, status=status, migration=change.migration, detail=detail))
            target.commit()
        except BaseException:
            target.rollback()
            raise


def check_effect(change: RecordChange, report: DriftReport) -> list[str]:
    """--check: the migration's schema effect is present (record) or absent (unrecord),
    as byhand verify sees it; the problems, or none."""
    name = change.migration
    if not change.unrecord:
        if name not in report.created_by_pending.values():
            return [
                f"--check: {name} changes nothing byhand verify can see (data only, or it failed on the scratch copy)"
            ]
        missing = report.lacks(name)
        return [f"--check: the database lacks what {name} does: {'; '.join(missing)}"] if missing else []
    created = report.created_by_recorded.get(name, [])
    if not created:
        return [f"--check: {name} creates nothing byhand verify can see, so its absence cannot be checked"]
    still = sorted(f"{table} {what}" for table, what in created if report.present(table, what))
    return [f"--check: the database still has what {name} creates: {'; '.join(still)}"] if still else []
