"""The history in django_migrations: which rows a migration writes (and unapplying it
deletes), as the SQL text Django would send, per vendor, quoted by the backend itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder

from byhand.vendors import Vendor

__all__ = ["NESTED_SQUASHES", "Row", "delete_sql", "insert_sql", "records_of"]

Row = tuple[str, str]


def records_of(migration: Migration, *, on_disk: Mapping[Row, Migration] | None = None) -> list[Row]:
    """Rows applying ``migration`` writes, and unapplying it deletes: a squash records
    each replaced name, then itself (as check_replacements does once all replaced
    names are recorded); unapplying deletes them all, as the executor does.

    From Django 6.0 a squash may replace a squash: the executor's record_migration then
    records the inner squash's replaced names too, depth first (``on_disk``, the
    loader's disk_migrations, says which replaced names are squashes)."""
    rows: list[Row] = []
    for app, name in migration.replaces:
        inner = on_disk.get((app, name)) if on_disk is not None and NESTED_SQUASHES else None
        rows.extend(records_of(inner, on_disk=on_disk) if inner is not None and inner.replaces else [(app, name)])
    return [*rows, (migration.app_label, migration.name)]


#: Whether Django records a squash of a squash with the inner squash's replaced names
#: (6.0+: MigrationExecutor.record_migration recurses; MigrationLoader.all_replaced_applied).
NESTED_SQUASHES = hasattr(MigrationLoader, "all_replaced_applied")


def _table(connection: Any) -> str:
    return str(connection.ops.quote_name(MigrationRecorder.Migration._meta.db_table))


def insert_sql(connection: Any, vendor: Vendor, row: Row, *, use_tz: bool) -> str:
    """One INSERT as Django's recorder writes it, with the time taken when it runs."""
    quote_name = connection.ops.quote_name
    columns = ", ".join(quote_name(c) for c in ("app", "name", "applied"))
    app, name = row
    now = vendor.now_sql(use_tz=use_tz)
    values = f"{vendor.quote_literal(connection, app)}, {vendor.quote_literal(connection, name)}, {now}"
    return f"INSERT INTO {_table(connection)} ({columns}) VALUES ({values});"


def delete_sql(connection: Any, vendor: Vendor, rows: Sequence[Row]) -> str:
    """One DELETE for all rows of one migration, each name with its own app: a squash
    may replace migrations of other apps, and Django unrecords each under its app."""
    quote_name = connection.ops.quote_name
    by_app: dict[str, list[str]] = {}
    for app, name in rows:
        by_app.setdefault(app, []).append(name)
    conditions = [
        f"{quote_name('app')} = {vendor.quote_literal(connection, app)} AND {quote_name('name')} IN "
        f"({', '.join(vendor.quote_literal(connection, name) for name in names)})"
        for app, names in by_app.items()
    ]
    where = conditions[0] if len(conditions) == 1 else " OR ".join(f"({c})" for c in conditions)
    return f"DELETE FROM {_table(connection)} WHERE {where};"
