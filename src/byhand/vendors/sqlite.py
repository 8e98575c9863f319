"""SQLite: transactional DDL, foreign keys switched off around each migration, file copies."""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from typing import Any

from byhand.exceptions import RehearsalError
from byhand.vendors.base import ScratchDatabase, Vendor, fingerprint, scratch_name

__all__ = ["SQLite"]

# Django's SQLite cursor turns unescaped %s into ? and %% into % (convert_query).
_PLACEHOLDER = re.compile(r"%%|(?<!%)%s")


#: Shadow tables of FTS3/4, FTS5 and R*Tree, for SQLite older than 3.37 (no PRAGMA table_list).
_SHADOW_SUFFIXES = (
    "content",
    "segments",
    "segdir",
    "docsize",
    "stat",
    "data",
    "idx",
    "config",
    "node",
    "parent",
    "rowid",
)


def _shadow_tables(cursor: Any) -> set[str]:
    """Tables a virtual table (FTS5, R*Tree) made for itself: its CREATE VIRTUAL TABLE
    makes them again, so copying them too would fail with 'already exists'."""
    if sqlite3.sqlite_version_info >= (3, 37):
        cursor.execute("PRAGMA table_list")
        return {row[1] for row in cursor.fetchall() if row[2] == "shadow"}
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
    virtual = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    names = {name for (name,) in cursor.fetchall()}
    return {f"{v}_{suffix}" for v in virtual for suffix in _SHADOW_SUFFIXES} & names


class SQLite(Vendor):
    name = "sqlite"
    can_rollback_ddl = True
    copies_in_background = False  # a file copy is quick, and ":memory:" is per connection

    def render_executed(self, connection: Any, sql: str, params: Any) -> str:
        if params is None:
            return sql
        values = iter(params)

        def substitute(match: re.Match[str]) -> str:
            return "%" if match.group() == "%%" else self.quote_literal(connection, next(values))

        return _PLACEHOLDER.sub(substitute, sql)

    def quote_literal(self, connection: Any, value: Any) -> str:
        # Django's own emulation of SQLite's parameter binding (it never doubles %).
        return str(connection.SchemaEditorClass(connection).quote_value(value))

    def now_sql(self, *, use_tz: bool) -> str:
        # Django stores text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC with USE_TZ).
        modifier = "" if use_tz else ", 'localtime'"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now'{modifier})"

    def server_version(self, connection: Any) -> str:
        return sqlite3.sqlite_version

    def before_migration(self, *, atomic: bool) -> list[str]:
        # As Django's schema editor: foreign keys off outside the transaction.
        return ["PRAGMA foreign_keys = OFF;", *super().before_migration(atomic=atomic)]

    def after_migration(self, *, atomic: bool) -> list[str]:
        # The sqlite3 CLI prints violations instead of failing; byhand apply fails on them.
        commit = super().after_migration(atomic=atomic)
        return ["PRAGMA foreign_key_check;", *commit, "PRAGMA foreign_keys = ON;"]

    def preamble(self) -> list[str]:
        return ["PRAGMA legacy_alter_table = OFF;"]

    def make_scratch(self, target: Any, *, server: Any) -> ScratchDatabase:
        with target.cursor() as cursor:
            shadow = _shadow_tables(cursor)
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 "
                "WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid"
            )
            statements = [sql for name, sql in cursor.fetchall() if name not in shadow]
        handle, path = tempfile.mkstemp(prefix=f"{scratch_name()}_", suffix=".sqlite3")
        os.close(handle)
        scratch = ScratchDatabase(
            settings={**target.settings_dict, "NAME": path},
            fingerprint=fingerprint("\n".join(statements)),
            server_version=self.server_version(target),
        )
        # Through a Django connection: functional indexes call the SQL functions
        # (django_datetime_extract, ...) that Django registers on its SQLite connections.
        copy = target.__class__(scratch.settings, target.alias)
        try:
            with copy.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        except Exception as exc:
            copy.close()
            self.drop_scratch(scratch, server=server)
            raise RehearsalError(f"could not copy the schema into the scratch file: {exc}") from exc
        copy.close()
        return scratch

    def prepare_scratch(self, connection: Any) -> None:
        # The copy is thrown away: no fsync at every COMMIT, journal in memory.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA journal_mode = MEMORY")

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(scratch.settings["NAME"] + suffix)
            except FileNotFoundError:
                pass
