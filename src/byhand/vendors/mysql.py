"""MySQL and MariaDB: no transactional DDL; scratch copies via mysqldump --no-data."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from byhand.vendors.base import ScratchDatabase, ServerVendor
from byhand.vendors.clients import run_client
from byhand.vendors.mysql_drivers import MySQLDriver, choose_driver
from byhand.vendors.observing import MySQLObserver, Observer
from byhand.vendors.online import OnlineForm, mysql_online_form
from byhand.vendors.statements import digest, strip_comments, tables_named_in
from byhand.vendors.target import Blocker, Target

__all__ = ["MySQL", "MySQLTarget"]


# -- operating side: the connection a runbook is applied through -----------------------

#: Statements that do not commit by themselves, so their journal row can share their transaction.
_DML = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE|SELECT)\b", re.IGNORECASE)
#: Lock wait timeout, deadlock: worth a retry.
_LOCK_ERRORS = {1205, 1213}
#: ER_ALTER_OPERATION_NOT_SUPPORTED(_REASON): the ALGORITHM or LOCK asked for is refused, before any change.
_ALGORITHM_REFUSED = {1845, 1846}
#: Server gone, lost, or this connection killed.
_LOST_ERRORS = {2006, 2013, 1927, 4031}
#: Access denied: to a database, a table, a column, a routine; a global privilege needed.
_DENIED_ERRORS = {1044, 1142, 1143, 1370, 1227}
_NO_SUCH_TABLE = 1146

_SESSIONS_SQL = """
SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.STATE, p.INFO,
       t.trx_started, TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6))
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.ID <> CONNECTION_ID() AND p.ID <> %s AND {condition}
ORDER BY t.trx_started IS NULL, t.trx_started
LIMIT 10
"""


#: The least lock timeout of a MariaDB statement that reads every row or rebuilds the table.
_LEAST_SCANNING_WAIT = timedelta(seconds=1)


class MySQLTarget(Target):
    driver: MySQLDriver

    def driver_connect(self, *, application: str) -> Any:
        params = self.params
        self.driver = choose_driver(params)
        kwargs: dict[str, Any] = {
            **{k: v for k, v in params.options.items() if k in self.vendor.passed_options},
            "database": params.database,
            "charset": params.options.get("charset", "utf8mb4"),
            "autocommit": True,
            "connect_timeout": int(params.options.get("connect_timeout", 10)),
        }
        for key, value in (("host", params.host), ("port", params.port), ("user", params.user)):
            if value is not None:
                kwargs[key] = value
        if params.password is not None:
            kwargs["password"] = params.password
        connection = self.driver.connect(kwargs, application=application)
        self._mariadb = "mariadb" in str(connection.get_server_info()).lower()
        return connection

    def driver_name(self) -> str:
        return self.driver.describe()

    def session_id(self) -> int:
        return int(self.connection.thread_id())

    def server_version(self) -> str:
        return self.driver.server_version(self.connection)

    def set_timeouts(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None, local: bool) -> None:
        # lock_wait_timeout takes whole seconds: rounded down, 0 means NOWAIT (MariaDB;
        # MySQL's minimum is 1). InnoDB row locks (DML in RunSQL) wait at least 1 s.
        seconds = int(lock_timeout.total_seconds())
        wanted = (seconds if self._mariadb else max(1, seconds), max(1, seconds), statement_timeout)
        if wanted == getattr(self, "_timeouts", None):
            return  # session variables: still set from the last statement
        self.execute(f"SET SESSION lock_wait_timeout = {wanted[0]}, innodb_lock_wait_timeout = {wanted[1]}")
        if statement_timeout is not None and self._mariadb:
            self.execute(f"SET SESSION max_statement_time = {statement_timeout.total_seconds():.3f}")
        self._timeouts = wanted

    def least_lock_timeout(self, observed: Mapping[str, Any] | None) -> timedelta:
        # An ALTER that reads every row (an index built in place, a table rebuilt or copied)
        # takes its exclusive metadata lock again to finish. With NOWAIT, one transaction
        # that read the table meanwhile made the finished work fail there, and the retry
        # did it all again (possibly for ever under load). 1 s, the least wait above NOWAIT,
        # lets such transactions end: queries queue behind it while they do, and for that
        # second on each attempt when one stays. An INPLACE or COPY whose rebuild the
        # rehearsal could not see (no PROCESS privilege, a name InnoDB encodes) counts too.
        if not self._mariadb or not observed:
            return timedelta(0)
        if observed.get("scan") or observed.get("algorithm") in ("INPLACE", "COPY"):
            return _LEAST_SCANNING_WAIT
        return timedelta(0)

    def refusal_advice(self, exc: BaseException) -> str | None:
        if _error_code(exc) not in _ALGORITHM_REFUSED:
            return None
        return (
            "The server refused the ALGORITHM or LOCK written in the statement before changing anything: "
            "byhand sql --online wrote what the rehearsal found on an empty copy of the schema, and this table "
            "needs more here (a hidden FTS_DOC_ID column left by a FULLTEXT index, an older row format). Rebuild "
            "the table at a quiet hour (ALTER TABLE ... FORCE) and run the runbook again, or write the runbook "
            "without --online (the server then chooses, and may copy the table while writes wait)"
        )

    def lock_timeout_text(self, lock_timeout: timedelta) -> str:
        seconds = int(lock_timeout.total_seconds())
        if self._mariadb and seconds == 0:
            return (
                "0s (NOWAIT: MariaDB counts whole seconds, rounded down; 1s for a statement that reads "
                "every row or rebuilds the table, so that its last lock does not throw the work away)"
            )
        if not self._mariadb and seconds < 1:
            return "1s (MySQL's least: it counts whole seconds)"
        if seconds != lock_timeout.total_seconds():
            return f"{seconds}s (whole seconds, rounded down)"
        return f"{seconds}s"

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return _error_code(exc) in _LOCK_ERRORS

    def is_connection_lost(self, exc: BaseException) -> bool:
        return _error_code(exc) in _LOST_ERRORS or self.driver.is_closed(exc)

    def is_permission_denied(self, exc: BaseException) -> bool:
        return _error_code(exc) in _DENIED_ERRORS

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return self.driver.errors()

    def runs_alone(self, sql: str) -> bool:
        return not _DML.match(strip_comments(sql))

    @functools.cached_property
    def _has_metadata_lock_info(self) -> bool:
        """Asked once per connection: the watcher would ask every second of a long statement."""
        rows = self.execute(
            "SELECT COUNT(*) FROM information_schema.PLUGINS "
            "WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'"
        )
        return bool(rows[0][0])

    def find_blockers(
        self, *, waiting_session: int, tables: list[str], older_than: timedelta, snapshots: bool = False
    ) -> list[Blocker]:
        # With metadata_lock_info the holders of a lock on the table are known; without
        # it, every session with an open transaction may hold one.
        certain = bool(tables) and self._has_metadata_lock_info
        if certain:
            marks = ", ".join(["%s"] * len(tables))
            condition = (
                "p.ID IN (SELECT THREAD_ID FROM information_schema.METADATA_LOCK_INFO "
                f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({marks}))"
            )
            args: tuple[Any, ...] = (waiting_session, *tables)
        else:
            condition = "t.trx_id IS NOT NULL AND t.trx_started < NOW(6) - INTERVAL %s MICROSECOND"
            args = (waiting_session, int(older_than.total_seconds() * 1e6))
        rows = self.execute(_SESSIONS_SQL.format(condition=condition), args)
        blockers = []
        for pid, user, host, command, state, info, started, age_us in rows:
            idle = command == "Sleep"
            blockers.append(
                Blocker(
                    pid=int(pid),
                    user=user,
                    application=None,
                    client=host,
                    state="idle in transaction" if idle and started else (state or command),
                    transaction_age=timedelta(microseconds=int(age_us)) if age_us is not None else None,
                    query_start=None,
                    query=info or ("" if idle else None),
                    certain=certain,
                )
            )
        return blockers

    def cancel(self, blocker: Blocker) -> None:
        self.execute(f"KILL QUERY {int(blocker.pid)}")

    def terminate(self, blocker: Blocker) -> None:
        self.execute(f"KILL CONNECTION {int(blocker.pid)}")

    def _lock_name(self, name: str) -> str:
        return f"byhand:{self.params.database}:{name}"[:64]

    def try_run_lock(self, name: str) -> bool:
        return bool(self.execute("SELECT GET_LOCK(%s, 0)", (self._lock_name(name),))[0][0] == 1)

    def release_run_lock(self, name: str) -> None:
        self.execute("SELECT RELEASE_LOCK(%s)", (self._lock_name(name),))

    def run_lock_holder(self, name: str) -> str | None:
        rows = self.execute(
            "SELECT p.ID, p.USER, p.HOST FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(%s)",
            (self._lock_name(name),),
        )
        if not rows:
            return None
        pid, user, host = rows[0]
        return f"connection {pid}, user {user} from {host}"

    def read_privilege(self, table: str) -> str:
        if self.table_exists(table):  # listed: the user has a privilege on it, so it is there
            return super().read_privilege(table)
        # Hidden or missing (the journal before apply's first run): "GRANT SELECT ON" a
        # table that does not exist is refused (1146); one on the database's tables is not.
        account, database = self.execute("SELECT CURRENT_USER(), DATABASE()")[0]
        name, _, host = str(account).rpartition("@")
        grant = f"GRANT SELECT ON {self.quote_name(str(database))}.* TO '{_quoted(name)}'@'{_quoted(host)}'"
        return (
            f"SELECT on the database's tables ({table} may not exist yet, and MariaDB does not show this user "
            f"whether it does; a grant on a table that does not exist is refused): {grant}"
        )

    def table_exists(self, name: str) -> bool:
        rows = self.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (name,),
        )
        return bool(rows[0][0])

    def has_table_to_read(self, name: str) -> bool:
        if self.table_exists(name):
            return True
        # information_schema lists only the tables the user has a privilege on; reading one
        # it does not list says whether it is missing (1146) or hidden (access denied).
        try:
            self.execute(f"SELECT 1 FROM {self.quote_name(name)} WHERE 1 = 0")
        except self.driver_errors() as exc:
            if _error_code(exc) == _NO_SUCH_TABLE:
                return False
            raise
        return True

    def state_of(self, sql: str) -> str:
        # SHOW CREATE TABLE of every table the statement names, or the columns and
        # indexes of the whole schema when it names none.
        parts = []
        tables = tables_named_in(sql)
        for table in tables:
            try:
                parts.append(str(self.execute(f"SHOW CREATE TABLE {self.quote_name(table)}")[0][1]))
            except self.driver_errors() as exc:
                parts.append(f"{table}: absent ({_error_code(exc)})")
        if not tables:
            for query in (
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2",
                "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME "
                "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2, 3",
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
            ):
                parts.append(repr(self.execute(query)))
        return digest("\n".join(parts))

    def timestamp(self, moment: datetime) -> Any:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


# -- the vendor ------------------------------------------------------------------------


def _quoted(text: str) -> str:
    """``text`` inside a single-quoted MariaDB string."""
    return text.replace("\\", "\\\\").replace("'", "''")


class MySQL(ServerVendor):
    """MySQL 8 and MariaDB 10.5+ (mysqlclient; the operating side also PyMySQL): DDL commits by itself."""

    name = "mysql"
    title = "MySQL/MariaDB"
    target_class = MySQLTarget
    passed_options = frozenset(
        {"charset", "connect_timeout", "read_default_file", "read_default_group", "init_command", "unix_socket"}
    )
    #: mysqlclient's quoting reads its connection (encoding), which refuses concurrent use.
    quoting_methods = (
        ("connection", "escape"),
        ("connection", "literal"),
        ("connection", "string_literal"),
        ("connection", "escape_string"),
    )
    column_types: ClassVar[dict[str, str]] = {"timestamp": "datetime(6)", "text": "longtext"}
    identity_column = "bigint AUTO_INCREMENT NOT NULL PRIMARY KEY"
    inline_index = True
    transactional_ddl = False
    backslash_escapes = True
    double_quoted_strings = True
    current_database_sql = "SELECT DATABASE()"
    online_forms = True

    def online_form(self, sql: str, observed: Mapping[str, Any] | None = None) -> OnlineForm | None:
        return mysql_online_form(sql, observed)  # the algorithm the rehearsal found

    create_hint = "grant CREATE and DROP on `{prefix}%` to this user"

    def quote_name(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def observer(self, connection: Any) -> Observer:
        return MySQLObserver()

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

    def foreign_key_actions(self, cursor: Any, table: str) -> dict[str, str]:
        # MariaDB and MySQL say RESTRICT for a foreign key made without ON DELETE, and NO
        # ACTION for one made with ON DELETE NO ACTION, which InnoDB treats as RESTRICT.
        cursor.execute(
            "SELECT constraint_name, delete_rule FROM information_schema.referential_constraints "
            "WHERE constraint_schema = DATABASE() AND table_name = %s",
            [table],
        )
        return {str(name): "RESTRICT" if rule == "NO ACTION" else str(rule) for name, rule in cursor.fetchall()}

    def column_type_names(self, cursor: Any, table: str) -> dict[str, str]:
        # COLUMN_TYPE: int(11), varchar(150), decimal(10,2), int(10) unsigned.
        cursor.execute(
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            [table],
        )
        return {str(column): str(kind) for column, kind in cursor.fetchall()}

    def check_clauses(self, cursor: Any, table: str) -> dict[str, tuple[str, bool]]:
        # MariaDB names a column's inline CHECK (Django's PositiveIntegerField makes one)
        # after the column and keeps that name when the column is renamed; a dump and
        # reload names it after the new column. LEVEL says which checks are inline.
        # (From 10.5.10; before it, every check is compared by its name.) MySQL names every
        # check itself (<table>_chk_<n>) and a dump keeps the names.
        connection = cursor.db
        if connection.mysql_is_mariadb:
            inline = "level = 'Column'" if connection.mysql_version >= (10, 5, 10) else "0"
            cursor.execute(
                f"SELECT constraint_name, check_clause, {inline} FROM information_schema.check_constraints "
                "WHERE constraint_schema = DATABASE() AND table_name = %s",
                [table],
            )
        else:
            cursor.execute(
                "SELECT cc.constraint_name, cc.check_clause, 0 "
                "FROM information_schema.check_constraints AS cc, information_schema.table_constraints AS tc "
                "WHERE cc.constraint_schema = DATABASE() AND tc.table_schema = cc.constraint_schema "
                "AND cc.constraint_name = tc.constraint_name AND tc.constraint_type = 'CHECK' AND tc.table_name = %s",
                [table],
            )
        return {str(name): (str(clause), bool(inline)) for name, clause, inline in cursor.fetchall()}

    def dump_schema(self, target: Any, *, unwanted: threading.Event | None = None) -> str:
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
        return run_client(dump_args, env=env, what="copy the target's schema with mysqldump", unwanted=unwanted)

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

    def load_schema(
        self, schema: str, *, scratch: ScratchDatabase, server: Any, unwanted: threading.Event | None = None
    ) -> None:
        args, env = server.client.settings_to_cmd_args_env(scratch.settings, [])
        run_client(
            ["mysql", *args[1:]],
            env=env,
            stdin=schema,
            what="load the schema into the scratch database",
            unwanted=unwanted,
        )

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{scratch.settings['NAME']}`")
