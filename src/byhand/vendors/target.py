"""The operating side's view of a database: a connection from a URL, and what each
vendor must answer while a runbook runs (timeouts, blockers, the run lock).

No Django here: the console script runs next to the database with only a driver.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from byhand.exceptions import BadDatabaseUrl

__all__ = [
    "Blocker",
    "ConnectionParams",
    "Target",
    "digest",
    "milliseconds",
    "params_from_settings",
    "parse_database_url",
    "strip_comments",
    "tables_named_in",
]

_SCHEMES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "pgsql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


@dataclass(frozen=True)
class ConnectionParams:
    """Where to connect. The password never appears in ``display()`` or ``repr()``."""

    vendor: str  # "postgresql", "mysql", "sqlite"
    database: str  # a database name, or a file path for SQLite
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    def display(self) -> str:
        """The URL without its password, for messages, logs and the journal."""
        if self.vendor == "sqlite":
            return f"sqlite:///{self.database}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.vendor}://{user}{self.host or 'localhost'}{port}/{self.database}"

    def scrub(self, text: str) -> str:
        """``text`` with the password removed, for errors that might quote it."""
        return text.replace(self.password, "********") if self.password else text

    def error_text(self, exc: BaseException) -> str:
        """A driver's error on one line, the password scrubbed."""
        return self.scrub(" ".join(str(exc).split()))


def parse_database_url(url: str) -> ConnectionParams:
    """``postgres://user:pass@host:port/db``, ``mysql://...``, ``sqlite:///relative`` or ``sqlite:////abs``."""
    parts = urlsplit(url)
    vendor = _SCHEMES.get(parts.scheme.lower())
    if vendor is None:
        known = ", ".join(f"{scheme}://" for scheme in _SCHEMES)
        raise BadDatabaseUrl(f"unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}; use one of {known}")
    if vendor == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path or parts.netloc:
            raise BadDatabaseUrl("an SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
        return ConnectionParams(vendor=vendor, database=path)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise BadDatabaseUrl(f"no database name in {parts.scheme}://…; add it as the path: /dbname")
    try:
        port = parts.port
    except ValueError:
        raise BadDatabaseUrl("the port is not a number from 1 to 65535") from None
    options = dict(parse_qsl(parts.query))
    password = unquote(parts.password) if parts.password is not None else options.pop("password", None)
    return ConnectionParams(
        vendor=vendor,
        database=database,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=password,
        options=options,
    )


#: DATABASES OPTIONS that change where or how the driver connects (and so must reach it).
_PASSED_OPTIONS = {
    "postgresql": {
        "options",
        "service",
        "passfile",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "target_session_attrs",
        "connect_timeout",
    },
    "mysql": {"charset", "connect_timeout", "read_default_file", "read_default_group", "init_command", "unix_socket"},
}


def params_from_settings(settings: dict[str, Any], *, vendor: str) -> ConnectionParams:
    """The same connection as a Django DATABASES entry (for ``manage.py byhand apply``)."""
    options = {k: str(v) for k, v in (settings.get("OPTIONS") or {}).items() if isinstance(v, (str, int))}
    kept = _PASSED_OPTIONS.get(vendor, set())
    if vendor == "sqlite":
        return ConnectionParams(vendor=vendor, database=str(settings["NAME"]))
    return ConnectionParams(
        vendor=vendor,
        database=str(settings["NAME"]),
        host=settings.get("HOST") or None,
        port=int(settings["PORT"]) if settings.get("PORT") else None,
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        options={k: v for k, v in options.items() if k in kept},
    )


@dataclass(frozen=True)
class Blocker:
    """A session that holds a lock a runbook statement waits for."""

    pid: int
    user: str | None
    application: str | None
    client: str | None
    state: str | None
    transaction_age: timedelta | None
    query_start: datetime | None
    query: str | None
    certain: bool = True  # False when the vendor cannot say who holds the lock, only who might

    def is_idle_in_transaction(self) -> bool:
        return (self.state or "").lower() in {"idle in transaction", "idle in transaction (aborted)", "sleep"}

    def describe(self) -> str:
        age = f", transaction open {self.transaction_age.total_seconds():.1f}s" if self.transaction_age else ""
        query = " ".join((self.query or "").split())[:120]
        who = f"{self.user or '?'}@{self.client or 'local'}"
        app = f" ({self.application})" if self.application else ""
        maybe = "" if self.certain else " [may hold it]"
        return f"pid {self.pid} {who}{app}, {self.state or '?'}{age}: {query or '-'}{maybe}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``text`` (what describe() says) for people reading events."""
        return {
            "text": self.describe(),
            "pid": self.pid,
            "user": self.user,
            "application": self.application,
            "client": self.client,
            "state": self.state,
            "transaction_age": self.transaction_age.total_seconds() if self.transaction_age else None,
            "query_start": self.query_start.isoformat() if self.query_start else None,
            "query": self.query,
            "certain": self.certain,
        }


_IDENTIFIER = r"(?:`[^`]+`|\"[^\"]+\"|\w+)"
_NAME = rf"({_IDENTIFIER}(?:\.{_IDENTIFIER})*)"
_COMMENT_ON = re.compile(rf"\bCOMMENT\s+ON\s+(TABLE|COLUMN)\s+{_NAME}", re.IGNORECASE)
_TABLE_AFTER = re.compile(
    rf"\b(?:TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|ON|REFERENCES|INTO|UPDATE|FROM|JOIN)\s+(?:ONLY\s+)?{_NAME}"
    rf"|\bRENAME\s+TABLE\s+{_NAME}\s+TO\s+{_NAME}|\bRENAME\s+TO\s+{_NAME}",
    re.IGNORECASE,
)
_PART = re.compile(_IDENTIFIER)
_STRING = re.compile(r"'(?:[^']|'')*'")
#: Words that follow ON, FROM, ... in Django's SQL without being a table (ON DELETE CASCADE, ...).
_NOT_TABLES = {"SET", "SELECT", "TABLE", "NOT", "IF", "DELETE", "UPDATE", "CASCADE", "COLUMN", "ONLY", "NULL"}


def _parts(name: str) -> list[str]:
    return [part.strip('`"') for part in _PART.findall(name)]


def tables_named_in(sql: str) -> list[str]:
    """Table names a DDL/DML statement touches, unquoted, in order of appearance.

    Good enough for Django's own statements (each names its table after TABLE, ON,
    REFERENCES, INTO, UPDATE or FROM; COMMENT ON COLUMN names table.column); used
    to find blockers and to fingerprint tables, never to decide what runs.
    """
    text = _STRING.sub("''", sql)
    found: list[tuple[int, str]] = []
    for match in _COMMENT_ON.finditer(text):
        parts = _parts(match.group(2))
        found.append((match.start(), parts[-2] if match.group(1).upper() == "COLUMN" and len(parts) > 1 else parts[-1]))
    text = _COMMENT_ON.sub(lambda m: " " * len(m.group(0)), text)
    for match in _TABLE_AFTER.finditer(text):
        for group in match.groups():
            if group is None:
                continue
            raw = _PART.findall(group)[-1]
            name = raw.strip('`"')
            if raw[0] in '`"' or name.upper() not in _NOT_TABLES:
                found.append((match.start(), name))
    names: list[str] = []
    for _position, name in sorted(found, key=lambda item: item[0]):
        if name not in names:
            names.append(name)
    return names


class Target:
    """A database a runbook is applied to, through the vendor's own driver (autocommit;
    byhand opens and closes transactions itself). Vendor modules subclass it."""

    vendor: str
    #: DDL rolls back (PostgreSQL, SQLite): a migration runs as one transaction.
    transactional_ddl: bool
    #: The driver's parameter marker.
    placeholder = "%s"
    #: A second connection can watch blockers and progress while a statement runs.
    watchable = True

    def __init__(self, params: ConnectionParams) -> None:
        self.params = params
        self.connection: Any = None

    # -- connection ------------------------------------------------------------------

    def connect(self, *, application: str) -> None:
        raise NotImplementedError

    def open_monitor(self) -> Target:
        """A second connection for watching blockers and progress while a statement runs."""
        other = type(self)(self.params)
        other.connect(application="byhand monitor")
        return other

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # noqa: BLE001 -- already gone: nothing left to close
                pass
            self.connection = None

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; return its rows (empty for statements without a result)."""
        cursor = self.connection.cursor()
        try:
            if params is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql.replace("%s", self.placeholder), params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def begin_transaction(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None) -> None:
        """Open a transaction whose statements all wait at most ``lock_timeout`` for a lock."""
        self.begin()
        self.set_timeouts(lock_timeout=lock_timeout, statement_timeout=statement_timeout, local=True)

    def write_and_commit(self, sql: str | None, params: list[Any] | None) -> None:
        """Run ``sql`` (the journal's rows; None for none) and commit."""
        if sql is not None:
            self.execute(sql, params)
        self.commit()

    def rollback(self) -> None:
        """Roll back whatever is open; never raises (the connection may be gone)."""
        try:
            self.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 -- a lost connection has rolled back already
            pass

    def session_id(self) -> int:
        raise NotImplementedError

    def server_version(self) -> str:
        raise NotImplementedError

    def quote_name(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    # -- timeouts and errors ---------------------------------------------------------

    def set_timeouts(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None, local: bool) -> None:
        raise NotImplementedError

    def is_lock_timeout(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def is_connection_lost(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exception classes for anything the database refused."""
        raise NotImplementedError

    def needs_autocommit(self, sql: str) -> bool:
        """True for statements that cannot run inside a transaction block."""
        return False

    def blocks_nobody_while_waiting(self, sql: str) -> bool:
        """True for statements whose lock waits do not queue the application's queries
        (PostgreSQL's CONCURRENTLY forms)."""
        return False

    def runs_alone(self, sql: str) -> bool:
        """True for statements that commit by themselves (MySQL DDL), so that their
        journal row cannot share their transaction."""
        return self.needs_autocommit(sql)

    # -- blockers and progress -------------------------------------------------------

    def find_blockers(self, *, waiting_session: int, tables: list[str], older_than: timedelta) -> list[Blocker]:
        """Sessions that block ``waiting_session`` now, or that hold a lock on ``tables`` in a
        transaction older than ``older_than`` (they held it for the whole failed wait).
        Called on a monitor connection."""
        return []

    def cancel(self, blocker: Blocker) -> None:
        raise NotImplementedError

    def terminate(self, blocker: Blocker) -> None:
        raise NotImplementedError

    def progress(self, *, session: int) -> str | None:
        """What a long statement of ``session`` is doing (index build phase and %), if known."""
        return None

    # -- one operator at a time ------------------------------------------------------

    def try_run_lock(self, name: str) -> bool:
        raise NotImplementedError

    def release_run_lock(self, name: str) -> None:
        raise NotImplementedError

    def run_lock_holder(self, name: str) -> str | None:
        """Who holds the run lock, as far as the server can tell (None: nobody)."""
        raise NotImplementedError

    # -- catalog ---------------------------------------------------------------------

    def table_exists(self, name: str) -> bool:
        raise NotImplementedError

    #: CREATE TABLE and CREATE INDEX of the journal, with {table} and {index} to fill in.
    journal_template: str

    def journal_ddl(self, table: str) -> str:
        return self.journal_template.format(table=self.quote_name(table), index=self.quote_name(f"{table}_runbook"))

    def recorded_migrations(self) -> set[tuple[str, str]] | None:
        """The (app, name) rows of django_migrations; None when the table does not exist."""
        if not self.table_exists("django_migrations"):
            return None
        q = self.quote_name
        rows = self.execute(f"SELECT {q('app')}, {q('name')} FROM {q('django_migrations')}")
        return {(str(app), str(name)) for app, name in rows}

    def state_of(self, sql: str) -> str:
        """A fingerprint of what ``sql`` changes, taken before it runs and compared after a
        crash to decide whether a statement that commits alone took effect."""
        raise NotImplementedError

    def leftover_of(self, sql: str) -> str | None:
        """SQL that removes what a failed attempt of ``sql`` left behind (an INVALID index)."""
        return None

    def timestamp(self, moment: datetime) -> Any:
        """``moment`` (UTC, aware) as the driver should bind it for the journal's columns."""
        return moment


def digest(text: str) -> str:
    """SHA-256 of ``text`` in hex: statement hashes and lock names."""
    return hashlib.sha256(text.encode()).hexdigest()


def milliseconds(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))


def strip_comments(sql: str) -> str:
    """``sql`` without its whole-line ``--`` comments, to look at what it starts with."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
