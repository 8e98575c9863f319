"""What a statement does on the scratch copy while it is rehearsed: the locks it takes and
whether it rewrites a table (PostgreSQL, read from the server), the cheapest ALTER
algorithm the server accepts for it (MariaDB/MySQL, probed), Django's remake of a table
(SQLite, from the statements). Written into the runbook as the step's "observed" (see
byhand.runbook), for ``byhand review``.

Planning side: it runs on the rehearsal's driver connection, in the statement thread or
in the caller's, after everything queued before the statement has run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from byhand.vendors.statements import IDENTIFIER, QUOTED_TEXT, normalize_query, tables_named_in

__all__ = [
    "MODES",
    "MySQLObserver",
    "Observer",
    "PostgreSQLObserver",
    "SQLiteObserver",
    "copy_obstacle",
    "copy_obstacles",
    "own_clauses",
    "reads_every_row",
    "tables_named",
    "with_algorithm",
]

Run = Callable[[], Any]

_QUALIFIED = rf"{IDENTIFIER}(?:\s*\.\s*{IDENTIFIER})?"
#: What a statement names that did not exist before it: the table it creates, a new name.
_CREATED = re.compile(rf"^\s*CREATE\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_QUALIFIED})", re.I)
_RENAMED_TO = re.compile(rf"\bRENAME\s+(?:TABLE\s+{_QUALIFIED}\s+)?TO\s+({_QUALIFIED})", re.I)
#: Statements that read every row of a table they name (while building or validating).
_SCANS = re.compile(
    r"^\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|UPDATE|DELETE|INSERT\s+INTO\s+\S+\s*(?:\([^)]*\)\s*)?SELECT)\b|"
    r"\bVALIDATE\s+CONSTRAINT\b|\bSET\s+NOT\s+NULL\b|"
    r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|PRIMARY\s+KEY|FOREIGN\s+KEY|CHECK|INDEX|KEY|FULLTEXT|SPATIAL)\b|"
    r"\bADD\s+(?:COLUMN\s+)?\S+\s+[^,]*\b(?:UNIQUE|PRIMARY\s+KEY)\b|"
    # A foreign key on a column the statement adds is checked only where the rows get a value.
    r"\bADD\s+(?:COLUMN\s+)?\S+\s+[^,]*\bDEFAULT\b[^,]*\bREFERENCES\b",
    re.IGNORECASE,
)
_NOT_VALID = re.compile(r"\bNOT\s+VALID\b", re.IGNORECASE)


def _unquote(name: str) -> str:
    last = re.split(r"\s*\.\s*(?=[\"`\w$])", name)[-1]
    if last[:1] in ('"', "`"):
        quote = last[0]
        return last[1:-1].replace(quote * 2, quote)
    return last


def tables_named(sql: str) -> list[str]:
    """The tables ``sql`` acts on that existed before it (not one it creates or renames to)."""
    bare = QUOTED_TEXT.sub("''", sql)
    new = {_unquote(match.group(1)) for match in (_CREATED.match(bare), *_RENAMED_TO.finditer(bare)) if match}
    return [name for name in tables_named_in(sql) if name not in new]


def reads_every_row(sql: str) -> bool:
    """Whether ``sql`` must read every row of a table to build or validate something
    (inferred from what it is: a NOT VALID constraint is not validated)."""
    bare = QUOTED_TEXT.sub("''", sql)
    if _CREATED.match(bare):
        return bool(re.search(r"\bSELECT\b", bare, re.IGNORECASE))
    if _NOT_VALID.search(bare) and not re.search(r"\bVALIDATE\b", bare, re.IGNORECASE):
        return False
    return _SCANS.search(bare) is not None


class Observer:
    """Runs a statement and says what it did; the base knows only the statement's text."""

    def observe(
        self, run: Run, sql: str, cursor: Any, params: Any = None, *, batch: bool = False
    ) -> tuple[Any, dict[str, Any]]:
        """Run the statement (``run``: ``sql`` with ``params`` on ``cursor``, the driver
        cursor) and return its result with what it did. An observer may run another form
        of it on ``cursor`` instead, with the same effect; ``batch``: it runs in the statement
        thread (Django's own operation), where nothing reads its result, so it may go to the
        server with a query of the observer's."""
        result = run()
        return result, self.inferred(sql)

    def inferred(self, sql: str) -> dict[str, Any]:
        return {"tables": tables_named(sql), "rewrites": [], "scan": reads_every_row(sql)}

    def touched(self, *, created: bool = False) -> None:
        """Something else ran on the connection since the last statement observed
        (``created``: something that may have created tables: RunPython's code)."""

    def read_target(self, cursor: Any) -> None:
        """Read what the observer needs of the runbook's own database (through ``cursor``),
        before the rehearsal starts, in the thread that made the connection."""


class SQLiteObserver(Observer):
    """Django's remake of a table (copy into ``new__<table>``, drop, rename) rewrites it:
    the INSERT … SELECT that copies the rows is where the rewrite and the scan are."""

    def inferred(self, sql: str) -> dict[str, Any]:
        observed = super().inferred(sql)
        match = re.match(r'\s*INSERT\s+INTO\s+"new__([^"]+)"', sql, re.IGNORECASE)
        if match and match.group(1) in observed["tables"]:
            observed["rewrites"] = [match.group(1)]
            observed["scan"] = True
        observed["tables"] = [name for name in observed["tables"] if not name.startswith("new__")]
        return observed


_NAME_OF = "CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END"
#: The relations observed: users' tables and indexes (not TOAST's, not sequences).
_KNOWN = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('r', 'p', 'i', 'I', 'm', 'f')"
)
#: Each relation's oid, name (with its schema when not the current one), kind, file and
#: table (an index's; 0 for a table).
_RELATIONS = f"""
SELECT c.oid::bigint, {_NAME_OF}, c.relkind, c.relfilenode::bigint, COALESCE(i.indrelid, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE {_KNOWN}
"""
#: The session's relation locks, on relations made by users (a catalog's oid is below 16384),
#: each with its file as it is now and, as _RELATIONS gives them, its name (NULL when it is
#: not one observed, or was dropped), kind and table: what a statement made or renamed is
#: learnt from its locks, without another query.
_LOCKS = f"""
SELECT l.relation::bigint, l.mode, l.virtualtransaction, pg_relation_filenode(l.relation)::bigint,
       CASE WHEN {_KNOWN} THEN {_NAME_OF} END, c.relkind, COALESCE(i.indrelid, 0)::bigint
FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = l.relation
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.relation >= 16384
"""
_QUALIFIED_REFERENCE = re.compile(
    rf"\b(?:TABLE|ON|REFERENCES|INTO|UPDATE|FROM|JOIN)\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?{IDENTIFIER}\s*\.\s*{IDENTIFIER}",
    re.IGNORECASE,
)
_RENAMES = re.compile(r"\bRENAME\b", re.IGNORECASE)
_TABLE_KINDS = ("r", "p", "m", "f")
#: PostgreSQL's table lock modes, weakest first.
MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
#: A statement PostgreSQL refuses inside a transaction block (CREATE INDEX CONCURRENTLY):
#: it runs as Django sent it, and its lock is what the documentation says it takes.
_NO_TRANSACTION_BLOCK = "25001"
_DROPPED_INDEX = re.compile(rf"^\s*DROP\s+INDEX\s+CONCURRENTLY\s+(?:IF\s+EXISTS\s+)?({_QUALIFIED})", re.I)
_CONCURRENT_INDEX_ON = re.compile(
    rf"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:{IDENTIFIER}\s+)?ON\s+(?:ONLY\s+)?"
    rf"({_QUALIFIED})",
    re.IGNORECASE,
)
_TABLE_NAMED = f"""SELECT c.oid::bigint, {_NAME_OF}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)"""
_TABLE_OF_INDEX = f"""SELECT c.oid::bigint, {_NAME_OF}
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indexrelid = to_regclass(%s)"""
#: What PostgreSQL runs only outside a transaction block.
_OUTSIDE_TRANSACTIONS = re.compile(
    r"^\s*(?:(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|REINDEX\b.*\bCONCURRENTLY|VACUUM|"
    r"CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|CREATE\s+TABLESPACE|DROP\s+TABLESPACE)\b",
    re.IGNORECASE | re.DOTALL,
)
#: A statement (of the several a text may hold) that begins or ends a transaction: it is
#: not observed, since the locks are read in the transaction it would end.
_OWN_TRANSACTION = re.compile(
    r"(?:^|;)\s*(?:BEGIN|COMMIT|END|ABORT|START\s+TRANSACTION|PREPARE\s+TRANSACTION|ROLLBACK(?!\s+TO\b))\b",
    re.IGNORECASE,
)
#: Statements PostgreSQL runs only inside a transaction block (SET LOCAL: only there has it an
#: effect): in autocommit they are not wrapped in one, so that they fail where migrate's fail.
_TRANSACTION_ONLY = re.compile(
    r"(?:^|;)\s*(?:LOCK|SAVEPOINT|RELEASE|ROLLBACK\s+TO|DECLARE|SET\s+LOCAL)\b", re.IGNORECASE
)
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.DOTALL)
_CONCURRENTLY = re.compile(r"^\s*(?:CREATE\s+(?:UNIQUE\s+)?|DROP\s+)INDEX\s+CONCURRENTLY\b", re.IGNORECASE)


class PostgreSQLObserver(Observer):
    """The statement's own locks are the (relation, mode) pairs its session holds after it
    and did not hold before it (pg_locks of the rehearsal session); a relation whose
    relfilenode changed was rewritten. A statement Django runs outside a transaction is
    run inside one here, so that its locks are still held when they are read."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection  # Django's: its driver connection is the one statements run on
        #: oid -> (name, kind, relfilenode, table oid) of every relation, as of the last statement.
        self.relations: dict[int, tuple[str, str, int, int]] | None = None
        self.tables: dict[str, int] = {}  # a table's name -> its oid
        #: The transaction the last statement ran in, with the locks its session held after it.
        self.held: tuple[str, set[tuple[int, str]]] | None = None
        self.stale = False  # something else ran since: the locks held are read again

    def touched(self, *, created: bool = False) -> None:
        self.stale = True
        if created:
            self.relations = None

    def observe(
        self, run: Run, sql: str, cursor: Any, params: Any = None, *, batch: bool = False
    ) -> tuple[Any, dict[str, Any]]:
        driver = self.connection.connection
        bare = _COMMENTS.sub(" ", normalize_query(sql))
        if _OWN_TRANSACTION.search(bare) or (driver.autocommit and _TRANSACTION_ONLY.search(bare)):
            # Its transaction is its own business: run as Django sends it (wrapped, LOCK TABLE
            # would pass where migrate fails; a COMMIT in it would end the locks' transaction
            # before they are read), not observed. What it made is read again.
            result = run()
            self.touched(created=True)
            return result, {}
        if batch and _one_round_trip(cursor, sql):
            self._prepare(cursor)
            # The statement and the locks query in one round trip; outside a transaction the
            # two run in one of their own (PostgreSQL's simple query), so the locks are held.
            batched = f"{sql}\n;\n{_LOCKS}"
            try:
                cursor.execute(batched) if params is None else cursor.execute(batched, params)
            except Exception as exc:
                if not (driver.autocommit and _sqlstate(exc) == _NO_TRANSACTION_BLOCK):
                    raise
                # Refused before it began (in autocommit, the two ran in a transaction of their own).
                return self._alone(run, sql, driver)
            while cursor.nextset():
                pass
            return None, self._observed(cursor, sql, rows=cursor.fetchall())
        return self._alone(run, sql, driver)

    def _alone(self, run: Run, sql: str, driver: Any) -> tuple[Any, dict[str, Any]]:
        """The statement on its own, its locks read by a query after it; in a transaction of
        its own when the connection is in autocommit."""
        aux = driver.cursor()
        try:
            self._prepare(aux)
            if not driver.autocommit:
                result = run()
                return result, self._observed(aux, sql)
            aux.execute("BEGIN")
            try:
                result = run()
            except Exception as exc:
                aux.execute("ROLLBACK")
                if _sqlstate(exc) != _NO_TRANSACTION_BLOCK:
                    raise
                return self._outside_transaction(run, sql, aux)
            observed = self._observed(aux, sql)
            aux.execute("COMMIT")
            return result, observed
        finally:
            aux.close()

    def _prepare(self, aux: Any) -> None:
        """Know every relation, and the locks held, before the statement."""
        if self.relations is None:
            self.relations, self.tables = {}, {}
            self._learn(aux)
        if self.stale:
            self.held = self._locks(aux)[0]
            self.stale = False

    def _learn(self, aux: Any, condition: str = "", params: tuple[Any, ...] | None = None) -> None:
        """Read the names, kinds, files and tables of every relation observed (that
        ``condition`` picks)."""
        aux.execute(_RELATIONS + condition, params)
        self._remember(aux.fetchall())

    def _remember(self, described: list[tuple[Any, ...]]) -> None:
        """Know these relations: (oid, name, kind, file, table) each."""
        relations, tables = self.relations, self.tables
        assert relations is not None
        for oid, name, kind, node, table in described:
            previous = relations.get(oid)
            if previous is not None and tables.get(previous[0]) == oid:
                del tables[previous[0]]
            relations[oid] = (name, kind, node, table or oid)
            if kind in _TABLE_KINDS:
                tables[name] = oid

    @staticmethod
    def _locks(aux: Any) -> tuple[tuple[str, set[tuple[int, str]]] | None, list[tuple[Any, ...]]]:
        aux.execute(_LOCKS)
        rows = aux.fetchall()
        return ((rows[0][2], {(row[0], row[1]) for row in rows}) if rows else None), rows

    def _observed(self, aux: Any, sql: str, *, rows: list[tuple[Any, ...]] | None = None) -> dict[str, Any]:
        relations = self.relations
        assert relations is not None
        if rows is None:
            held, rows = self._locks(aux)
        else:
            held = (rows[0][2], {(row[0], row[1]) for row in rows}) if rows else None
        before = self.held[1] if self.held is not None and held is not None and self.held[0] == held[0] else set()
        self.held = held
        # Tables it names that existed before it, then those it took a lock on (or on an index of).
        # A name the statement qualifies with a schema may be another schema's than the same name's here.
        qualified = _QUALIFIED_REFERENCE.search(QUOTED_TEXT.sub("''", sql))
        named = [] if qualified else [name for name in tables_named(sql) if name in self.tables]
        tables, locks = named, []
        for name, mode, oid in sorted((relations[oid][0], mode, oid) for oid, mode, *_ in rows if oid in relations):
            kind, table = relations[oid][1], relations[oid][3]
            table_name = name if kind in _TABLE_KINDS else relations.get(table, (None,))[0]
            if (oid, mode) in before or table_name is None:
                continue
            tables.append(table_name)
            if kind in _TABLE_KINDS:
                locks.append({"table": name, "mode": mode})
        tables = list(dict.fromkeys(tables))
        rewritten: dict[str, bool] = {}  # name -> whether it is a table
        for oid, _, _, node, *_ in rows:
            known = relations.get(oid)
            if known is not None and node is not None and known[2] not in (0, node):
                rewritten[known[0]] = known[1] in _TABLE_KINDS
                relations[oid] = (known[0], known[1], node, known[3])
        rewrites = [name for name, is_table in rewritten.items() if is_table] or list(rewritten)
        strongest = {
            table: max((mode for oid, mode in before if oid == self.tables.get(table)), key=MODES.index, default=None)
            for table in tables
        }
        # What it made, and new names, for the statements after it.
        renames = _RENAMES.search(sql) is not None
        self._remember(
            [
                (oid, name, kind, node, table)
                for oid, _, _, node, name, kind, table in rows
                if name is not None and (renames or oid not in relations)
            ]
        )
        scan = bool(rewrites) or reads_every_row(sql)
        observed: dict[str, Any] = {"tables": tables, "locks": locks, "rewrites": rewrites, "scan": scan}
        observed["held"] = [{"table": table, "mode": mode} for table, mode in strongest.items() if mode]
        return observed

    def _outside_transaction(self, run: Run, sql: str, aux: Any) -> tuple[Any, dict[str, Any]]:
        """A statement PostgreSQL runs only outside a transaction, run as Django sent it; an
        index built or dropped CONCURRENTLY takes, as documented, ShareUpdateExclusiveLock on
        its table, which the server names before it runs (another schema's, a name folded
        to lower case as PostgreSQL folds it)."""
        observed = self.inferred(sql)
        if not _CONCURRENTLY.match(sql):
            result = run()
            self.touched(created=True)  # whatever it made
            return result, observed
        table = self._table_of(aux, sql)
        result = run()
        if table is None:  # not found before it ran (IF EXISTS, a name the server refuses)
            tables = observed["tables"][:1]
            self.touched(created=True)
        else:
            tables = [table[1]]
            if self.relations is not None:  # (else every relation is read before the next statement)
                self._learn(aux, " AND (i.indrelid = %s OR c.oid = %s)", (table[0], table[0]))  # its new index
        observed["tables"] = tables
        observed["locks"] = [{"table": name, "mode": "ShareUpdateExclusiveLock"} for name in tables]
        return result, observed

    @staticmethod
    def _table_of(aux: Any, sql: str) -> tuple[int, str] | None:
        """The table a CREATE INDEX CONCURRENTLY is on, or whose index a DROP INDEX
        CONCURRENTLY drops (oid, name as observed), resolved by the server from the text."""
        bare = QUOTED_TEXT.sub("''", sql)
        created = _CONCURRENT_INDEX_ON.match(bare)
        named = created or _DROPPED_INDEX.match(bare)
        if named is None:
            return None
        try:
            aux.execute(_TABLE_NAMED if created else _TABLE_OF_INDEX, (named.group(1),))
            row = aux.fetchone()
        except Exception:  # noqa: BLE001 -- a name the server cannot parse: the text's reading stands
            return None
        return None if row is None else (int(row[0]), str(row[1]))


def _one_round_trip(cursor: Any, sql: str) -> bool:
    """Whether ``sql`` and the locks query can go as one simple query: a driver cursor that
    binds parameters on the client (psycopg 2, psycopg 3's ClientCursor: Django's default),
    and a statement PostgreSQL runs inside a transaction block."""
    names = {klass.__name__ for klass in type(cursor).__mro__}
    client_side = "ClientCursor" in names or type(cursor).__module__.startswith("psycopg2")
    return client_side and not _OUTSIDE_TRANSACTIONS.match(sql)


def _sqlstate(exc: BaseException) -> str | None:
    for error in (exc, exc.__cause__):
        code = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
        if code:
            return str(code)
    return None


_ALGORITHMS = ("INSTANT", "NOCOPY", "INPLACE", "COPY")
_LOCK_LEVELS = ("NONE", "SHARED", "EXCLUSIVE")
#: ER_ALTER_OPERATION_NOT_SUPPORTED and …_REASON: the ALGORITHM or LOCK asked for is refused,
#: before anything is changed, with what to try instead.
_REFUSED = (1845, 1846)
_TRY = re.compile(r"Try (ALGORITHM|LOCK)=(\w+)")
_ALTER = re.compile(r"^\s*ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\b", re.IGNORECASE)
#: What takes an ALGORITHM: an ALTER TABLE, an index made or dropped (after whole-line comments).
_ALTERS = re.compile(
    r"^(?:\s*--[^\n]*\n)*\s*(?:ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE|"
    r"CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX|DROP\s+INDEX)\b",
    re.IGNORECASE,
)
#: An ALGORITHM or LOCK clause the statement holds already (a RunSQL's): the server takes the last
#: one given, so a probe's would replace it; the statement runs as written and says its own.
_OWN_CLAUSE = re.compile(
    r"\b(ALGORITHM)\s*=?\s*(DEFAULT|INSTANT|NOCOPY|INPLACE|COPY)\b|\b(LOCK)\s*=?\s*(DEFAULT|NONE|SHARED|EXCLUSIVE)\b",
    re.IGNORECASE,
)


#: MariaDB/MySQL comments: an executable one (/*! … */, /*M! … */, with a version or not) is
#: run, its text kept; the others are not.
_EXECUTABLE_COMMENT = re.compile(r"/\*M?!\d*(.*?)\*/", re.DOTALL)
_COMMENT = re.compile(r"/\*.*?\*/|(?:--\s|#).*?$", re.DOTALL | re.MULTILINE)


def own_clauses(sql: str) -> dict[str, str]:
    """The ALGORITHM and LOCK a MariaDB/MySQL statement asks for ({"ALGORITHM": "INPLACE",
    "LOCK": "NONE"}, upper case; what it does not ask for is missing): not in a literal, nor
    in a comment the server does not run."""
    text = _COMMENT.sub(" ", _EXECUTABLE_COMMENT.sub(r" \1 ", QUOTED_TEXT.sub("''", sql)))
    return {
        (match.group(1) or match.group(3)).upper(): (match.group(2) or match.group(4)).upper()
        for match in _OWN_CLAUSE.finditer(text)
    }


_FOREIGN_KEY = re.compile(r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?FOREIGN\s+KEY\b", re.IGNORECASE)
_CHECK = re.compile(r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?CHECK\b", re.IGNORECASE)
_INDEX_BUILD = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\b|\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|INDEX|KEY)\b", re.IGNORECASE
)
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\b", re.IGNORECASE)
_DROP_INDEX = re.compile(rf"^\s*DROP\s+INDEX\s+({IDENTIFIER})\s+ON\s+({_QUALIFIED})\s*$", re.IGNORECASE)


#: What pt-online-schema-change cannot copy as migrate leaves it: a query for the names
#: that show it on a table, and what to say of them.
_OBSTACLES = (
    (
        "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = TABLE_NAME{only}",
        "a foreign key to itself ({}), which the copy's would point at the old table",
    ),
    (
        "SELECT TABLE_NAME, 'none' FROM information_schema.TABLES t WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_TYPE = 'BASE TABLE'{only} AND NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS s "
        "WHERE s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME AND s.NON_UNIQUE = 0)",
        "no primary key or unique index, which its triggers find rows by",
    ),
    (
        "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
        "WHERE EVENT_OBJECT_SCHEMA = DATABASE(){only_event}",
        "triggers of its own ({}), beside which it cannot keep its copy in step",
    ),
    (
        # MariaDB names a column's CHECK after the column when it is made, and keeps the
        # name when the column is renamed; the copy's table names it after the column again.
        "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS c "
        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND LEVEL = 'Column'{only} AND NOT EXISTS (SELECT 1 FROM "
        "information_schema.COLUMNS k WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = c.TABLE_NAME "
        "AND k.COLUMN_NAME = c.CONSTRAINT_NAME)",
        "a column's CHECK named after the column's former name ({}), which the copy would rename",
    ),
)


def copy_obstacles(cursor: Any, *, table: str | None = None, ignored: Collection[str] = ()) -> dict[str, str]:
    """Per table of the database (or ``table`` alone), what it has that pt-online-schema-change
    cannot copy as migrate leaves it (through a DB-API ``cursor``; ``ignored``: triggers that
    are its own); tables with nothing of the kind are left out."""
    found: dict[str, str] = {}
    for query, said in _OBSTACLES:
        only = {"only": "", "only_event": ""}
        if table is not None:
            only = {"only": " AND TABLE_NAME = %(t)s", "only_event": " AND EVENT_OBJECT_TABLE = %(t)s"}
        try:
            cursor.execute(query.format(**only) + " ORDER BY 1, 2", {"t": table} if table is not None else None)
        except Exception:  # noqa: BLE001 -- MySQL's CHECK_CONSTRAINTS has no LEVEL: no column checks to ask of
            continue
        names: dict[str, list[str]] = {}
        for name, what in cursor.fetchall():
            if what not in ignored:
                names.setdefault(str(name), []).append(str(what))
        for name, whats in names.items():
            found.setdefault(name, said.format(", ".join(whats)))
    return found


def copy_obstacle(cursor: Any, table: str, *, ignored: Collection[str] = ()) -> str | None:
    """What ``table`` has that pt-online-schema-change cannot copy as migrate leaves it, or None."""
    return copy_obstacles(cursor, table=table, ignored=ignored).get(table)


class MySQLObserver(Observer):
    """The cheapest ALGORITHM, and with it the weakest LOCK, that the server accepts for an
    ALTER TABLE, CREATE INDEX or DROP INDEX: tried from INSTANT down, following the
    server's own "Try ALGORITHM=…" and "Try LOCK=…" (a refusal changes nothing and comes
    back at once); the first form accepted is the statement's run on the scratch copy, with
    the same effect as Django's. A DROP INDEX takes no clause and is tried as the ALTER
    TABLE … DROP INDEX it is."""

    def __init__(self) -> None:
        self.copies_online: bool | None = None  # whether the server has COPY with LOCK=NONE
        self.version: str | None = None  # the server's, as the driver gives it
        #: What the runbook's own database has that a copy cannot keep (read_target): the
        #: scratch copy, made from a dump, lacks some of it (a column CHECK's former name).
        #: None: not asked (no --online), and no statement is asked about either.
        self.uncopied: dict[str, str] | None = None

    def read_target(self, cursor: Any) -> None:
        self.uncopied = copy_obstacles(cursor)

    def observe(
        self, run: Run, sql: str, cursor: Any, params: Any = None, *, batch: bool = False
    ) -> tuple[Any, dict[str, Any]]:
        observed = self.inferred(sql)
        observed.update(algorithm=None, lock=None)
        # An ALTER whose algorithm is not found out is not observed (review then reads its
        # text): an algorithm None says a statement that takes none (CREATE TABLE, RENAME).
        altering = _ALTERS.match(sql) is not None
        own = own_clauses(sql)
        if own:
            result = run()
            algorithm = own.get("ALGORITHM")
            if algorithm not in _ALGORITHMS:  # LOCK= alone, or ALGORITHM=DEFAULT: the server chose
                return result, {} if altering else observed
            lock = own.get("LOCK", "NONE" if algorithm == "INSTANT" else None)
            observed.update(algorithm=algorithm, lock=lock if lock in _LOCK_LEVELS else None)
            if algorithm == "COPY":
                observed.update(rewrites=observed["tables"][:1], scan=True)
            return result, observed
        form = _probe_form(sql)
        if form is None:
            return run(), {} if altering else observed
        algorithm, lock = self._first_try(sql, cursor), "NONE"
        tried: set[tuple[str, str]] = set()
        before: int | None = None  # the InnoDB table id, before an in-place ALTER
        while (algorithm, lock) not in tried:
            if (algorithm, lock) == ("COPY", "NONE") and not self._copies_online(cursor):
                lock = "SHARED"  # a refusal saved: the server has no online COPY
            tried.add((algorithm, lock))
            if algorithm == "INPLACE" and before is None:
                before = self._table_id(cursor, observed["tables"])
            try:
                probe = form(algorithm, lock)
                result = cursor.execute(probe) if params is None else cursor.execute(probe, params)
            except Exception as exc:  # noqa: BLE001 -- anything but a refusal: Django's own statement says
                advice = _advice(exc)
                if advice is None:
                    break
                algorithm, lock = advice(algorithm, lock)
                continue
            observed.update(algorithm=algorithm, lock=lock)
            rebuilt = algorithm == "INPLACE" and before not in (None, self._table_id(cursor, observed["tables"]))
            if algorithm == "COPY" or rebuilt:
                observed["rewrites"] = observed["tables"][:1]
                observed["scan"] = True
            if algorithm == "COPY" and observed["tables"] and self.uncopied is not None:
                table = str(observed["tables"][0])
                obstacle = copy_obstacle(cursor, table) or self.uncopied.get(table)
                if obstacle is not None:
                    observed["uncopied"] = obstacle
            return result, observed
        return run(), {}  # no probe was taken: Django's statement as it is, not observed

    def _table_id(self, cursor: Any, tables: list[str]) -> int | None:
        """InnoDB's id of the table an ALTER alters: an in-place ALTER that rebuilds the
        table (MODIFY … NULL) gives it a new one. MariaDB's INNODB_SYS_TABLES; None elsewhere,
        or for a name InnoDB writes otherwise (it encodes characters outside [A-Za-z0-9_])."""
        if not tables or "MariaDB" not in self._version(cursor) or not re.fullmatch(r"\w+", tables[0]):
            return None
        try:  # it needs the PROCESS privilege: without it, the rebuild is not seen
            cursor.execute(
                "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = CONCAT(DATABASE(), '/', %s)",
                (tables[0],),
            )
            row = cursor.fetchone()
        except Exception:  # noqa: BLE001 -- a fact the review can do without
            return None
        return None if row is None else int(row[0])

    def _first_try(self, sql: str, cursor: Any) -> str:
        """Where to start: INSTANT, except where the server's documentation and its answers
        here say a cheaper form is refused whatever the table (each refusal costs a few ms
        of the rehearsal): an index build is never INSTANT; a foreign key is copied while
        foreign_key_checks is on (both servers), a CHECK always (MariaDB). Starting lower can
        only report a dearer algorithm than the server would take, never a cheaper one."""
        version = self._version(cursor)
        bare = QUOTED_TEXT.sub("''", sql)
        if _FOREIGN_KEY.search(bare):
            cursor.execute("SELECT @@foreign_key_checks")
            (checks,) = cursor.fetchone()
            if int(checks):
                return "COPY"
        if "MariaDB" in version and _CHECK.search(bare):
            return "COPY"
        if _INDEX_BUILD.search(bare):
            return "NOCOPY" if "MariaDB" in version else "INPLACE"
        return "INSTANT"

    def _version(self, cursor: Any) -> str:
        if self.version is None:
            self.version = str(cursor.connection.get_server_info())
        return self.version

    def _copies_online(self, cursor: Any) -> bool:
        """MariaDB 11.2 and later copy a table with LOCK=NONE; MySQL and older MariaDB never do."""
        if self.copies_online is None:
            version = self._version(cursor)
            numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
            self.copies_online = "MariaDB" in version and numbers >= (11, 2)
        return self.copies_online


def with_algorithm(sql: str, algorithm: str, lock: str) -> str | None:
    """``sql`` as the rehearsal probed it: with an ``ALGORITHM`` clause, and a ``LOCK`` one
    unless the algorithm is INSTANT; None when it takes none (see _probe_form)."""
    form = _probe_form(sql)
    return None if form is None else form(algorithm, lock)


def _probe_form(sql: str) -> Callable[[str, str], str] | None:
    """How ``sql`` is written with an ALGORITHM and a LOCK clause; None when it takes none
    (another statement, or one whose end is not the end of its clauses)."""
    text = sql.rstrip().rstrip(";")
    if re.search(r"--|#|/\*|;", QUOTED_TEXT.sub("''", text)):
        return None
    if _ALTER.match(text):
        return lambda algorithm, lock: f"{text}, {_clause(algorithm, lock, ', ')}"
    if _CREATE_INDEX.match(text):
        return lambda algorithm, lock: f"{text} {_clause(algorithm, lock, ' ')}"
    drop = _DROP_INDEX.match(text)
    if drop:
        index, table = drop.groups()
        return lambda algorithm, lock: f"ALTER TABLE {table} DROP INDEX {index}, {_clause(algorithm, lock, ', ')}"
    return None


def _clause(algorithm: str, lock: str, separator: str) -> str:
    # MySQL takes no LOCK but DEFAULT with INSTANT; INSTANT never locks on either server.
    return f"ALGORITHM={algorithm}" if algorithm == "INSTANT" else f"ALGORITHM={algorithm}{separator}LOCK={lock}"


def _advice(exc: BaseException) -> Callable[[str, str], tuple[str, str]] | None:
    """What to try after the server refused an ALGORITHM or a LOCK, or None (not a refusal)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code not in _REFUSED:
        return None
    match = _TRY.search(str(exc.args[1]) if len(exc.args) > 1 else "")

    def next_form(algorithm: str, lock: str) -> tuple[str, str]:
        if match and match.group(1) == "ALGORITHM" and match.group(2) in _ALGORITHMS:
            suggested = match.group(2)
            if _ALGORITHMS.index(suggested) > _ALGORITHMS.index(algorithm):
                return suggested, lock
        if match and match.group(1) == "LOCK" and match.group(2) in _LOCK_LEVELS:
            suggested = match.group(2)
            if _LOCK_LEVELS.index(suggested) > _LOCK_LEVELS.index(lock):
                return algorithm, suggested
        # No usable hint: the next lock level, then the next algorithm from LOCK=NONE.
        if algorithm != "INSTANT" and lock != _LOCK_LEVELS[-1]:
            return algorithm, _LOCK_LEVELS[_LOCK_LEVELS.index(lock) + 1]
        if algorithm == _ALGORITHMS[-1]:
            return algorithm, lock  # nothing left to try: the caller has tried this one
        return _ALGORITHMS[_ALGORITHMS.index(algorithm) + 1], "NONE"

    return next_form
