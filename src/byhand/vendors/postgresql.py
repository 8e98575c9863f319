"""PostgreSQL: transactional DDL, scratch copies via pg_dump --schema-only on the same server."""

from __future__ import annotations

from typing import Any

from byhand.vendors.base import ScratchDatabase, Vendor, run_client

__all__ = ["PostgreSQL"]

#: pg_dump takes ACCESS SHARE locks; never queue behind a pending ALTER TABLE for long.
DUMP_LOCK_WAIT = "5s"


class PostgreSQL(Vendor):
    name = "postgresql"
    can_rollback_ddl = True

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

    create_hint = "grant CREATEDB to this role"

    def dump_schema(self, target: Any) -> str:
        args, env = target.client.settings_to_cmd_args_env(target.settings_dict, [])
        dump_args = [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            f"--lock-wait-timeout={DUMP_LOCK_WAIT}",
            *args[1:],
        ]
        return run_client(dump_args, env=env, what="copy the target's schema with pg_dump")

    def create_database(self, name: str, *, target: Any, server: Any) -> None:
        with server.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')

    def load_schema(self, schema: str, *, scratch: ScratchDatabase, server: Any) -> None:
        args, env = server.client.settings_to_cmd_args_env(scratch.settings, [])
        load_args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *args[1:]]
        run_client(load_args, env=env, stdin=schema, what="load the schema into the scratch database")

    def prepare_scratch(self, connection: Any) -> None:
        # The copy is thrown away: no need to wait for the WAL flush at every COMMIT.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        name = scratch.settings["NAME"]
        with server.cursor() as cursor:
            force = " WITH (FORCE)" if server.pg_version >= 130000 else ""
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
