"""PostgreSQL: transactional DDL, scratch copies via pg_dump --schema-only on the same server."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar

from byhand.vendors.base import ScratchDatabase, ServerVendor
from byhand.vendors.clients import run_client
from byhand.vendors.observing import Observer, PostgreSQLObserver
from byhand.vendors.online import OnlineForm, postgresql_online_form
from byhand.vendors.statements import digest, strip_comments, tables_named_in
from byhand.vendors.target import Blocker, Target, milliseconds

__all__ = ["PostgreSQL", "PostgreSQLTarget"]

#: pg_dump takes ACCESS SHARE locks; never queue behind a pending ALTER TABLE for long.
DUMP_LOCK_WAIT = "5s"


# -- operating side: the connection a runbook is applied through -----------------------

#: Statements whose waiting for older transactions blocks no query of the application.
_CONCURRENT_FORMS = (
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|DROP\s+INDEX\s+CONCURRENTLY|REINDEX\b[^;]*\bCONCURRENTLY"
)
_CONCURRENTLY = re.compile(rf"^\s*(?:{_CONCURRENT_FORMS})\b", re.IGNORECASE)
#: Statements that cannot run inside a transaction block.
_NEEDS_AUTOCOMMIT = re.compile(
    rf"^\s*(?:{_CONCURRENT_FORMS}|VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM)\b", re.IGNORECASE
)
_CONCURRENT_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\"[^\"]+\"|\w+)",
    re.IGNORECASE,
)
#: SQLSTATEs worth a retry: lock_not_available (lock_timeout), deadlock_detected.
_LOCK_STATES = {"55P03", "40P01"}
_INSUFFICIENT_PRIVILEGE = "42501"

#: Sessions that block ``session``'s statement, or hold a lock on its tables (or the tables
#: a foreign key joins them to) since before ``older``, or (``snapshots``) an old snapshot. A
#: parallel worker is left out: it holds its leader's locks, and the leader is listed for it
#: (pg_blocking_pids names leaders too); the statement's own workers are not its blockers.
_BLOCKERS_SQL = """
WITH named AS (SELECT to_regclass(quote_ident(t)) AS oid FROM unnest(%(tables)s::text[]) AS t),
rels AS (
  SELECT oid FROM named WHERE oid IS NOT NULL
  UNION SELECT confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid IN (SELECT oid FROM named)
  UNION SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid IN (SELECT oid FROM named)
)
SELECT DISTINCT a.pid, a.usename, a.application_name, host(a.client_addr), a.state,
       now() - a.xact_start, a.query_start, a.query, a.xact_start
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.granted AND l.locktype = 'relation'
WHERE a.pid <> pg_backend_pid() AND a.pid <> %(session)s
  AND (a.leader_pid IS NULL OR a.leader_pid = a.pid)
  AND (a.pid = ANY(pg_blocking_pids(%(session)s))
       OR (l.relation IN (SELECT oid FROM rels)
           AND coalesce(a.xact_start, a.query_start) < now() - %(older)s::interval)
       OR (%(snapshots)s AND a.datname = current_database() AND a.backend_xmin IS NOT NULL
           AND a.backend_type = 'client backend'
           AND coalesce(a.xact_start, a.query_start) < now() - %(older)s::interval))
ORDER BY a.xact_start NULLS LAST
LIMIT 10
"""

#: pg_constraint.confdeltype: the ON DELETE action of a foreign key.
_CONFDELTYPE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

# The table as Django's introspection finds it: visible on the search path.
_FOREIGN_KEY_ACTIONS_SQL = """
SELECT con.conname, con.confdeltype FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE con.contype = 'f' AND c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)
"""

_COLUMN_TYPES_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped
"""

#: format_type()'s long names, shortened as Django writes them (printing only: both sides
#: of a comparison are named by the same function).
_SHORT_TYPE_NAMES = ((re.compile(r"^character varying\b"), "varchar"), (re.compile(r"^character\b"), "char"))

_STATE_SQL = """
WITH rels AS (
  SELECT c.oid FROM pg_class c
  WHERE c.relnamespace = ANY(current_schemas(false)::regnamespace[])
    AND (cardinality(%s::text[]) = 0 OR c.relname = ANY(%s::text[]))
)
SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM (
  SELECT c.relname || ' ' || c.relkind::text FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels)
  UNION ALL
  SELECT a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attrelid IN (SELECT oid FROM rels) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
  WHERE conrelid IN (SELECT oid FROM rels)
  UNION ALL
  SELECT pg_get_indexdef(indexrelid) || ' ' || indisvalid FROM pg_index WHERE indrelid IN (SELECT oid FROM rels)
) AS s(x)
"""


class PostgreSQLTarget(Target):
    def driver_connect(self, *, application: str) -> Any:
        import psycopg

        params = self.params
        kwargs: dict[str, Any] = {
            "dbname": params.database,
            "application_name": application[:63],
            "connect_timeout": int(params.options.get("connect_timeout", 10)),
            **{k: v for k, v in params.options.items() if k != "connect_timeout"},
        }
        for key, value in (("host", params.host), ("port", params.port), ("user", params.user)):
            if value is not None:
                kwargs[key] = value
        if params.password is not None:
            kwargs["password"] = params.password
        # No server-side prepared statements: a pooler could hand them to another client.
        connection = psycopg.connect(autocommit=True, prepare_threshold=None, **kwargs)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            row = cursor.fetchone()
        self._server_pid = int(row[0]) if row else 0
        return connection

    def execute_named(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement with %(name)s parameters (psycopg's pyformat)."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def session_id(self) -> int:
        """The server's pid of this session, as pg_stat_activity and pg_locks name it."""
        return self._server_pid

    def pooler_in_the_way(self) -> str | None:
        # A pooler answers the connection itself: the session pid it reports in the
        # protocol's BackendKeyData is its own, not that of the server's session behind it.
        reported = int(self.connection.info.backend_pid)
        if reported == self._server_pid:
            return None
        return (
            f"the connection reported session pid {reported}, but the server's session is pid {self._server_pid}: "
            "a connection pooler (PgBouncer or the like) stands between byhand and the server"
        )

    def server_version(self) -> str:
        return str(self.execute("SHOW server_version")[0][0])

    def begin_read_only(self, start: str) -> None:
        self.execute("BEGIN")  # SET TRANSACTION outside a transaction block does nothing
        self.execute(start)

    def read_rows(self, sql: str) -> list[tuple[Any, ...]]:
        from psycopg.types.string import TextLoader

        # As Django's connection loads them (psycopg_any.register_tzloader and its neighbours).
        cursor = self.connection.cursor()
        try:
            for name in ("jsonb", "inet", "cidr"):
                cursor.adapters.register_loader(name, TextLoader)
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def begin_transaction(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None) -> None:
        # One round trip (simple protocol: several statements, no parameters).
        sql = f"BEGIN; SET LOCAL lock_timeout = '{milliseconds(lock_timeout)}ms'"
        if statement_timeout is not None:
            sql += f"; SET LOCAL statement_timeout = '{milliseconds(statement_timeout)}ms'"
        self.execute(sql)

    def write_and_commit(self, sql: str | None, params: list[Any] | None) -> None:
        # The journal's rows and COMMIT in one round trip, the values quoted by the driver.
        if sql is None:
            self.commit()
            return
        import psycopg

        self.execute(psycopg.ClientCursor(self.connection).mogrify(sql, params) + "; COMMIT")

    def set_timeouts(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None, local: bool) -> None:
        scope = "SET LOCAL" if local else "SET"
        self.execute(f"{scope} lock_timeout = '{milliseconds(lock_timeout)}ms'")
        if statement_timeout is not None:
            self.execute(f"{scope} statement_timeout = '{milliseconds(statement_timeout)}ms'")

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) in _LOCK_STATES

    def is_permission_denied(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE

    def is_connection_lost(self, exc: BaseException) -> bool:
        connection = self.connection
        return connection is None or bool(connection.closed or connection.broken)

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def needs_autocommit(self, sql: str) -> bool:
        return bool(_NEEDS_AUTOCOMMIT.match(strip_comments(sql)))

    def blocks_nobody_while_waiting(self, sql: str) -> bool:
        return bool(_CONCURRENTLY.match(strip_comments(sql)))

    def find_blockers(
        self, *, waiting_session: int, tables: list[str], older_than: timedelta, snapshots: bool = False
    ) -> list[Blocker]:
        arguments = {
            "session": waiting_session,
            "tables": tables,
            "older": f"{milliseconds(older_than)} ms",
            "snapshots": snapshots,
        }
        rows = self.execute_named(_BLOCKERS_SQL, arguments)
        return [
            Blocker(
                pid=pid,
                user=user,
                application=app or None,
                client=client,
                state=state,
                transaction_age=age,
                query_start=started,
                query=query,
            )
            for pid, user, app, client, state, age, started, query, _xact in rows
        ]

    def cancel(self, blocker: Blocker) -> None:
        self.execute("SELECT pg_cancel_backend(%s)", (blocker.pid,))

    def terminate(self, blocker: Blocker) -> None:
        self.execute("SELECT pg_terminate_backend(%s)", (blocker.pid,))

    def progress(self, *, session: int) -> str | None:
        rows = self.execute(
            "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total "
            "FROM pg_stat_progress_create_index WHERE pid = %s",
            (session,),
        )
        if not rows:
            return None
        phase, blocks_done, blocks_total, tuples_done, tuples_total = rows[0]
        if blocks_total:
            return f"index build: {phase}, {100 * blocks_done / blocks_total:.0f}% of blocks"
        if tuples_total:
            return f"index build: {phase}, {100 * tuples_done / tuples_total:.0f}% of tuples"
        return f"index build: {phase}"

    def _lock_key(self, name: str) -> tuple[int, int]:
        number = int(digest(name)[:16], 16)
        return _int4(number >> 32), _int4(number & 0xFFFFFFFF)

    def try_run_lock(self, name: str) -> bool:
        return bool(self.execute("SELECT pg_try_advisory_lock(%s, %s)", self._lock_key(name))[0][0])

    def release_run_lock(self, name: str) -> None:
        self.execute("SELECT pg_advisory_unlock(%s, %s)", self._lock_key(name))

    def run_lock_holder(self, name: str) -> str | None:
        rows = self.execute(
            "SELECT a.pid, a.usename, host(a.client_addr), a.application_name, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            tuple(k % 2**32 for k in self._lock_key(name)),
        )
        if not rows:
            return None
        pid, user, client, app, since = rows[0]
        return f"server pid {pid}, user {user} from {client or 'local socket'} ({app}), since {since}"

    def table_exists(self, name: str) -> bool:
        return bool(self.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL", (name,))[0][0])

    def state_of(self, sql: str) -> str:
        tables = tables_named_in(sql)
        return str(self.execute(_STATE_SQL, (tables, tables))[0][0])

    def leftover_of(self, sql: str) -> str | None:
        match = _CONCURRENT_INDEX.match(strip_comments(sql))
        if not match:
            return None
        name = match.group(1).strip('"')
        rows = self.execute(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND c.relnamespace = ANY(current_schemas(false)::regnamespace[])",
            (name,),
        )
        return f"DROP INDEX CONCURRENTLY IF EXISTS {self.quote_name(name)};" if rows and rows[0][0] else None


def _int4(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


# -- the vendor ------------------------------------------------------------------------


class PostgreSQL(ServerVendor):
    """PostgreSQL 13+ (psycopg 3)."""

    name = "postgresql"
    title = "PostgreSQL"
    current_database_sql = "SELECT current_database()"
    create_hint = "grant CREATEDB to this role"
    passed_options = frozenset(
        {
            "options",
            "service",
            "passfile",
            "sslmode",
            "sslrootcert",
            "sslcert",
            "sslkey",
            "target_session_attrs",
            "connect_timeout",
        }
    )
    #: psycopg composes parameters client-side, reading the connection's adapters.
    quoting_methods = (("ops", "compose_sql"),)
    column_types: ClassVar[dict[str, str]] = {"timestamp": "timestamp with time zone"}
    identity_column = "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    target_class = PostgreSQLTarget
    online_forms = True

    def online_form(self, sql: str, observed: Mapping[str, Any] | None = None) -> OnlineForm | None:
        return postgresql_online_form(sql)  # from the text alone

    def online_exempt_tables(self, connection: Any) -> set[str]:
        # CREATE INDEX CONCURRENTLY and ADD FOREIGN KEY ... NOT VALID are refused on a
        # partitioned table, and a partition's constraints follow its parent's.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE (relkind = 'p' OR relispartition) "
                "AND relnamespace = current_schema()::regnamespace"
            )
            return {str(name) for (name,) in cursor.fetchall()}

    @contextmanager
    def twin(self, connection: Any) -> Iterator[Any]:
        # psycopg 3 keeps adapters per connection, and a migration may register some on
        # the scratch copy's connection once it has made their type: HStoreExtension
        # (Django's register_type_handlers), pgvector's VectorExtension. A value of that
        # type (an HStoreField's default dict) is then quoted on the twin, which must see
        # them too: it shares the connection's adapter map. (psycopg2 registers them
        # globally.)
        with super().twin(connection) as twin:
            connection.ensure_connection()
            if hasattr(connection.connection, "adapters"):
                twin.ensure_connection()
                twin.connection._adapters = connection.connection.adapters
            yield twin

    def observer(self, connection: Any) -> Observer:
        return PostgreSQLObserver(connection)

    def render_executed(self, connection: Any, sql: str, params: Any) -> str:
        # Django's PostgreSQL schema editor composes parameters client-side and sends
        # params=None; other callers (RunSQL with params) are composed the same way.
        return sql if params is None else str(connection.ops.compose_sql(sql, params))

    def quote_literal(self, connection: Any, value: Any) -> str:
        return str(connection.ops.compose_sql("%s", [value]))

    def now_sql(self, *, use_tz: bool) -> str:
        return "NOW()"  # timestamptz: the same instant whatever USE_TZ says

    def server_version(self, connection: Any) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return str(cursor.fetchone()[0])

    def dump_schema(self, target: Any, *, unwanted: threading.Event | None = None) -> str:
        args, env = target.client.settings_to_cmd_args_env(target.settings_dict, [])
        dump_args = [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            f"--lock-wait-timeout={DUMP_LOCK_WAIT}",
            *args[1:],
        ]
        return run_client(dump_args, env=env, what="copy the target's schema with pg_dump", unwanted=unwanted)

    def create_database(self, name: str, *, target: Any, server: Any) -> None:
        with server.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')

    def load_schema(
        self, schema: str, *, scratch: ScratchDatabase, server: Any, unwanted: threading.Event | None = None
    ) -> None:
        args, env = server.client.settings_to_cmd_args_env(scratch.settings, [])
        load_args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *args[1:]]
        run_client(
            load_args, env=env, stdin=schema, what="load the schema into the scratch database", unwanted=unwanted
        )

    def foreign_key_actions(self, cursor: Any, table: str) -> dict[str, str]:
        cursor.execute(_FOREIGN_KEY_ACTIONS_SQL, [table])
        return {name: _CONFDELTYPE[code] for name, code in cursor.fetchall()}

    def column_type_names(self, cursor: Any, table: str) -> dict[str, str]:
        # format_type() names the type by name, never by OID (an extension's types have
        # another OID in every database), with its typmod: varchar(150), numeric(10,2).
        cursor.execute(_COLUMN_TYPES_SQL, [table])
        return {str(column): _short_type_name(str(kind)) for column, kind in cursor.fetchall()}

    def prepare_scratch(self, connection: Any) -> None:
        # The copy is thrown away: no need to wait for the WAL flush at every COMMIT.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        name = scratch.settings["NAME"]
        with server.cursor() as cursor:
            force = " WITH (FORCE)" if server.pg_version >= 130000 else ""
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')


def _short_type_name(kind: str) -> str:
    """'character varying(100)' as varchar(100), 'character(2)' as char(2); others as they are."""
    for long_name, short in _SHORT_TYPE_NAMES:
        kind = long_name.sub(short, kind)
    return kind
