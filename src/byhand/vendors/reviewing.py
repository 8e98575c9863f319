"""What ``byhand review`` asks of each vendor: the live size of tables, what a statement's
locks block, and the safer form of a statement where the vendor has one.

Read by byhand.operating.reviewing; nothing outside this package names a vendor.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from byhand.vendors.online import ENGINE
from byhand.vendors.target import Target
from byhand.vendors.text_locks import dropped_indexes, mysql_text_locks, postgresql_text_locks

__all__ = ["BLOCKS_ORDER", "REVIEW_FACTS", "Blocks", "ReviewFacts", "TableSize", "stronger", "unknown_lock"]

Blocks = Literal["none", "writes", "reads and writes"]
#: From nothing blocked to everything blocked.
BLOCKS_ORDER: tuple[Blocks, ...] = ("none", "writes", "reads and writes")


def stronger(a: Blocks | None, b: Blocks | None) -> Blocks | None:
    """The one of ``a`` and ``b`` that blocks more (None: unknown, yields to a known one)."""
    if a is None or b is None:
        return a or b
    return a if BLOCKS_ORDER.index(a) >= BLOCKS_ORDER.index(b) else b


def unknown_lock(lock: Mapping[str, Any]) -> str:
    """Why a lock observed on a table blocks what is unknown: its mode is none byhand knows
    (a hand-edited runbook), or it has none."""
    if lock.get("mode") is None:
        return f"a lock with no mode on {lock.get('table')}"
    return f"{lock.get('mode')} on {lock.get('table')}: a lock mode byhand does not know"


@dataclass(frozen=True)
class TableSize:
    """A table's live size as the server estimates it; None where it cannot say.
    ``estimated``: its bytes could not be read live (another session holds the table
    locked) and are the catalogue's estimate (ReviewFacts.sizes_source says how)."""

    rows: int | None
    bytes: int | None
    estimated: bool = False


class ReviewFacts(ABC):
    """One vendor's answers for review."""

    #: How the sizes are read, for the report.
    sizes_source: ClassVar[str]
    #: What a user needs to read the sizes and the catalogue.
    catalogue_privilege: ClassVar[str] = "SELECT on the tables"
    #: squawk (a PostgreSQL linter) reads this vendor's SQL.
    squawk: ClassVar[bool] = False

    @abstractmethod
    def table_sizes(self, target: Target, tables: list[str]) -> dict[str, TableSize]:
        """The tables of ``tables`` that exist on ``target``, with their sizes."""

    def blocks(self, observed: Mapping[str, Any] | None) -> tuple[Blocks | None, list[str]]:
        """What the locks a statement was observed taking block, and why (None: cannot tell,
        as for a statement not observed, or a lock of a mode byhand does not know)."""
        return None, []

    def lock_blocks(self, mode: str | None) -> Blocks | None:
        """What a lock mode held on a table blocks (locks carried to a later statement);
        None for a mode byhand does not know, or none."""
        return None

    def safer(self, sql: str, observed: Mapping[str, Any] | None) -> str | None:
        """A form of the statement that blocks less, where there is one."""
        return None

    def text_locks(self, sql: str, *, tables: list[str], index_tables: Mapping[str, str]) -> dict[str, Any] | None:
        """What the statement's text says it takes, in the shape of "observed" (blocks() reads
        it as it reads what was observed): byhand.vendors.text_locks. None: the text does not
        say. ``tables``: those its text names; ``index_tables``: index name -> its table."""
        return None

    def index_tables(self, target: Target, statements: list[str]) -> dict[str, str]:
        """The table of each index ``statements`` drop without naming its table, where it exists."""
        return {}


#: pg_locks mode names and what other sessions they keep waiting.
_PG_MODES: dict[str, Blocks] = {
    "AccessExclusiveLock": "reads and writes",
    "ExclusiveLock": "writes",
    "ShareRowExclusiveLock": "writes",
    "ShareLock": "writes",
    "ShareUpdateExclusiveLock": "none",
    "RowExclusiveLock": "none",
    "RowShareLock": "none",
    "AccessShareLock": "none",
}

_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", re.IGNORECASE)
_ADD_CONSTRAINT = re.compile(r"\bADD\s+CONSTRAINT\s+\S+\s+(FOREIGN\s+KEY|CHECK|UNIQUE)\b", re.IGNORECASE)
_NOT_VALID = re.compile(r"\bNOT\s+VALID\b", re.IGNORECASE)
_SET_NOT_NULL = re.compile(r"\bALTER\s+COLUMN\s+(\S+)\s+SET\s+NOT\s+NULL\b", re.IGNORECASE)


#: The tables' oids, rows and estimated bytes from pg_class alone, which locks no table: a
#: name as the rehearsal writes it, the table's own, found as the search path finds it, or
#: "schema.table" for another schema's (to_regclass: NULL where it is not there, and no lock).
#: The estimate: relpages (as of the last VACUUM, ANALYZE or index build) of the table, its
#: indexes, its TOAST table and the TOAST table's index, times the block size.
_PG_CATALOGUE = """
SELECT n, c.oid, CASE WHEN max(l.reltuples) >= 0 THEN sum(greatest(l.reltuples, 0)) END,
    coalesce(sum(l.relpages + coalesce(t.relpages, 0) + (
        SELECT coalesce(sum(i.relpages), 0) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid IN (l.oid, l.reltoastrelid)
    )), 0)::bigint * current_setting('block_size')::bigint
FROM unnest(%s::text[]) AS n
JOIN pg_class c ON c.oid = COALESCE(to_regclass(quote_ident(n)), CASE WHEN strpos(n, '.') > 0 THEN
    to_regclass(quote_ident(split_part(n, '.', 1)) || '.' || quote_ident(substr(n, strpos(n, '.') + 1))) END)
LEFT JOIN LATERAL (
    SELECT relid FROM pg_partition_tree(c.oid) WHERE isleaf AND c.relkind = 'p'
    UNION ALL SELECT c.oid WHERE c.relkind <> 'p'
) AS leaf ON true
LEFT JOIN pg_class l ON l.oid = leaf.relid
LEFT JOIN pg_class t ON t.oid = l.reltoastrelid
WHERE c.relkind IN ('r', 'p', 'm')
GROUP BY n, c.oid
"""
#: A table's bytes, table, indexes and TOAST; a partitioned table's are its partitions'.
_PG_TOTAL_SIZES = """
SELECT o, CASE WHEN c.relkind = 'p'
    THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(o) WHERE isleaf)
    ELSE pg_total_relation_size(o) END
FROM unnest(%s::oid[]) AS o JOIN pg_class c ON c.oid = o
"""
#: How long reading a table's bytes live waits for its lock (pg_total_relation_size takes
#: ACCESS SHARE): a table another session holds locked gets the estimate instead.
_PG_SIZE_LOCK_TIMEOUT = "100ms"


class _PostgreSQL(ReviewFacts):
    sizes_source = (
        "rows: pg_class.reltuples (the planner's estimate as of the last ANALYZE, VACUUM or index build; "
        "unknown for a table never analysed); bytes: pg_total_relation_size (table, indexes and TOAST), or for a "
        "table another session holds locked (a migration running), an estimate from pg_class.relpages as of the "
        "same moments (unknown for a table never analysed); a partitioned table's: the sum of its partitions'"
    )
    catalogue_privilege = "SELECT on pg_catalog.pg_class and pg_index and USAGE on each table's schema"
    squawk = True

    def table_sizes(self, target: Target, tables: list[str]) -> dict[str, TableSize]:
        found = {
            str(name): (int(oid), None if tuples is None or tuples < 0 else round(tuples), int(estimate))
            for name, oid, tuples, estimate in target.execute(_PG_CATALOGUE, [list(tables)])
        }
        target.execute(f"SET LOCAL lock_timeout = '{_PG_SIZE_LOCK_TIMEOUT}'")
        oids = sorted({oid for oid, _, _ in found.values()})
        live = _pg_total_sizes(target, oids)
        if live is None:  # one of them is locked: each on its own, to read the others live
            live = {}
            for oid in oids:
                live.update(_pg_total_sizes(target, [oid]) or {})
        return {
            name: TableSize(rows=rows, bytes=live[oid])
            if oid in live
            else TableSize(rows=rows, bytes=None if rows is None else estimate, estimated=True)
            for name, (oid, rows, estimate) in found.items()
        }

    def blocks(self, observed: Mapping[str, Any] | None) -> tuple[Blocks | None, list[str]]:
        if observed is None:
            return None, []
        found: Blocks = "none"
        unknown: list[str] = []
        for lock in observed.get("locks") or []:
            blocked = self.lock_blocks(lock.get("mode"))
            if blocked is None:
                unknown.append(unknown_lock(lock))
            else:
                found = max(found, blocked, key=BLOCKS_ORDER.index)
        # A lock of a mode byhand does not know may block anything, unless a known one blocks everything.
        return (None if unknown and found != "reads and writes" else found), unknown

    def lock_blocks(self, mode: str | None) -> Blocks | None:
        return _PG_MODES.get(mode) if mode is not None else None

    def text_locks(self, sql: str, *, tables: list[str], index_tables: Mapping[str, str]) -> dict[str, Any] | None:
        return postgresql_text_locks(sql, tables=tables, index_tables=index_tables)

    def index_tables(self, target: Target, statements: list[str]) -> dict[str, str]:
        names = sorted({name for sql in statements for name in dropped_indexes(sql)})
        if not names:
            return {}
        rows = target.execute(
            "SELECT n, t.relname FROM unnest(%s::text[]) AS n "
            "JOIN pg_index x ON x.indexrelid = to_regclass(quote_ident(n)) JOIN pg_class t ON t.oid = x.indrelid",
            [names],
        )
        return {str(name): str(table) for name, table in rows}

    def safer(self, sql: str, observed: Mapping[str, Any] | None) -> str | None:
        if _INDEX.search(sql):
            return (
                "CREATE INDEX CONCURRENTLY (blocks no writes; in a non-atomic migration, e.g. Django's "
                "AddIndexConcurrently)"
            )
        constraint = _ADD_CONSTRAINT.search(sql)
        if constraint and not _NOT_VALID.search(sql):
            if constraint.group(1).upper() == "UNIQUE":
                return "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX"
            return "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in a later transaction (blocks no writes)"
        not_null = _SET_NOT_NULL.search(sql)
        if not_null:
            return (
                f"a CHECK ({not_null.group(1)} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL "
                "(PostgreSQL 12+ then skips the scan)"
            )
        return None


def _pg_total_sizes(target: Target, oids: list[int]) -> dict[int, int] | None:
    """pg_total_relation_size of each of ``oids`` (one dropped meanwhile left out); None when
    one of them is locked by another session (the lock timeout, rolled back to a savepoint)."""
    target.execute("SAVEPOINT byhand_sizes")
    try:
        rows = target.execute(_PG_TOTAL_SIZES, [oids])
    except target.driver_errors() as exc:
        if not target.is_lock_timeout(exc):
            raise
        target.execute("ROLLBACK TO SAVEPOINT byhand_sizes")
        return None
    target.execute("RELEASE SAVEPOINT byhand_sizes")
    return {int(oid): int(size) for oid, size in rows if size is not None}


#: MariaDB/MySQL's LOCK clause values and what they keep waiting.
_MYSQL_LOCKS: dict[str, Blocks] = {"NONE": "none", "SHARED": "writes", "EXCLUSIVE": "reads and writes"}


class _MySQL(ReviewFacts):
    sizes_source = (
        "rows: information_schema.TABLES.TABLE_ROWS (the storage engine's estimate); bytes: DATA_LENGTH + INDEX_LENGTH"
    )
    catalogue_privilege = "a privilege on each table (information_schema lists only those)"

    def table_sizes(self, target: Target, tables: list[str]) -> dict[str, TableSize]:
        marks = ", ".join(["%s"] * len(tables))
        rows = target.execute(
            "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({marks})",
            list(tables),
        )
        return {
            str(name): TableSize(rows=None if count is None else int(count), bytes=None if size is None else int(size))
            for name, count, size in rows
        }

    def blocks(self, observed: Mapping[str, Any] | None) -> tuple[Blocks | None, list[str]]:
        if observed is None:
            return None, []
        algorithm, lock = observed.get("algorithm"), observed.get("lock")
        if algorithm is None:  # CREATE/DROP/RENAME TABLE: a metadata lock, held briefly
            return "none", []
        if str(algorithm).upper() == "INSTANT":
            return "none", [f"ALGORITHM=INSTANT: changes metadata only ({lock or 'no'} LOCK needed)"]
        if algorithm == ENGINE:
            return "none", [
                "through pt-online-schema-change: a copy kept in step by triggers while writes go on; metadata "
                "locks only to add its triggers and to swap the tables, each bounded by the lock timeout"
            ]
        if lock is None:
            return None, [f"ALGORITHM={algorithm} with no LOCK observed"]
        blocked = _MYSQL_LOCKS.get(str(lock).upper())
        return blocked, [] if blocked is not None else [f"LOCK={lock}: a value byhand does not know"]

    def text_locks(self, sql: str, *, tables: list[str], index_tables: Mapping[str, str]) -> dict[str, Any] | None:
        return mysql_text_locks(sql)

    def safer(self, sql: str, observed: Mapping[str, Any] | None) -> str | None:
        if observed and str(observed.get("algorithm") or "").upper() == "COPY":
            return "pt-online-schema-change (or gh-ost): copies the table in chunks while writes go on"
        return None


class _SQLite(ReviewFacts):
    sizes_source = (
        "rows: max(rowid) (an upper bound: deleted rows leave gaps); bytes: the pages of the table and its "
        "indexes in the dbstat table (unknown where SQLite is built without it)"
    )

    def table_sizes(self, target: Target, tables: list[str]) -> dict[str, TableSize]:
        sizes: dict[str, TableSize] = {}
        for table in tables:
            if not target.table_exists(table):
                continue
            try:
                rows: int | None = int(
                    target.execute(f"SELECT coalesce(max(rowid), 0) FROM {target.quote_name(table)}")[0][0]
                )
            except target.driver_errors():  # a WITHOUT ROWID table
                rows = None
            try:
                found = target.execute(
                    "SELECT sum(pgsize) FROM dbstat WHERE aggregate = 1 AND name IN "
                    "(SELECT name FROM sqlite_master WHERE tbl_name = %s)",
                    [table],
                )
                size = None if found[0][0] is None else int(found[0][0])
            except target.driver_errors():  # no dbstat in this build
                size = None
            sizes[table] = TableSize(rows=rows, bytes=size)
        return sizes

    def blocks(self, observed: Mapping[str, Any] | None) -> tuple[Blocks | None, list[str]]:
        return "writes", ["SQLite: every other writer of the database waits until its transaction ends"]


#: Per vendor name.
REVIEW_FACTS: Mapping[str, ReviewFacts] = {"postgresql": _PostgreSQL(), "mysql": _MySQL(), "sqlite": _SQLite()}
