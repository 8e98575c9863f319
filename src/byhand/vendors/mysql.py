"""MySQL and MariaDB: no transactional DDL; scratch copies via mysqldump --no-data."""

from __future__ import annotations

from typing import Any

from byhand.vendors.base import ScratchDatabase, Vendor, run_client

__all__ = ["MySQL"]


class MySQL(Vendor):
    name = "mysql"
    can_rollback_ddl = False

    def render_executed(self, connection: Any, sql: str, params: Any) -> str:
        # mysqlclient interpolates client-side: query % tuple(literal(arg) ...).
        if params is None:
            return sql
        return sql % tuple(self.quote_literal(connection, param) for param in params)

    def quote_literal(self, connection: Any, value: Any) -> str:
        connection.ensure_connection()
        driver = connection.connection
        literal = driver.literal(value)
        return literal.decode(getattr(driver, "encoding", "utf-8")) if isinstance(literal, bytes) else str(literal)

    def now_sql(self, *, use_tz: bool) -> str:
        # datetime(6) holds naive UTC when USE_TZ; otherwise Django writes local
        # time, for which the server's session time zone is the nearest we have.
        return "UTC_TIMESTAMP(6)" if use_tz else "NOW(6)"

    def server_version(self, connection: Any) -> str:
        return str(connection.mysql_server_info)

    create_hint = "grant CREATE and DROP on `byhand_scratch_%` to this user"

    def dump_schema(self, target: Any) -> str:
        args, env = target.client.settings_to_cmd_args_env(target.settings_dict, [])
        dump_args = [
            "mysqldump",
            *args[1:],
            "--no-data",
            "--single-transaction",
            "--skip-lock-tables",
            "--skip-comments",
            "--skip-add-drop-table",
        ]
        return run_client(dump_args, env=env, what="copy the target's schema with mysqldump")

    def create_database(self, name: str, *, target: Any, server: Any) -> None:
        # The same default character set and collation as the target's database.
        with target.cursor() as cursor:
            cursor.execute(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()"
            )
            charset, collation = cursor.fetchone()
        with server.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET {charset} COLLATE {collation}")

    def load_schema(self, schema: str, *, scratch: ScratchDatabase, server: Any) -> None:
        args, env = server.client.settings_to_cmd_args_env(scratch.settings, [])
        run_client(["mysql", *args[1:]], env=env, stdin=schema, what="load the schema into the scratch database")

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{scratch.settings['NAME']}`")
