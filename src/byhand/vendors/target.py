"""The operating side's view of a database: one connection, and what a vendor must answer
while a runbook runs (timeouts, errors, blockers, the run lock, the catalog).

No Django here: the console script runs next to the database with only a driver.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from byhand.exceptions import ByhandError, CannotConnect, DriverUnavailable
from byhand.vendors.params import ConnectionParams

if TYPE_CHECKING:
    from byhand.vendors.base import Vendor

__all__ = ["Blocker", "Target", "milliseconds"]


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
        query = " ".join((self.query or "").split()).rstrip(" ;")[:120]
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


def milliseconds(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))


class Target(ABC):
    """A database a runbook is applied to, through the vendor's own driver (autocommit;
    byhand opens and closes transactions itself). Each vendor module subclasses it; the
    facts (quoting, placeholders, what can be watched) are the vendor object's."""

    def __init__(self, vendor: Vendor, params: ConnectionParams) -> None:
        self.vendor = vendor
        self.params = params
        self.connection: Any = None

    # -- connection ------------------------------------------------------------------

    def connect(self, *, application: str = "byhand apply") -> None:
        """Open the connection; any failure becomes CannotConnect, the password scrubbed."""
        params = self.params
        try:
            self.connection = self.driver_connect(application=f"{application} {os.getpid()}@{socket.gethostname()}")
        except ByhandError:
            raise  # the driver chosen is not there, or the choice cannot be read: said as it is
        except ImportError as exc:
            raise DriverUnavailable(params.display(), f"the {params.vendor} driver is not installed ({exc})") from None
        except Exception as exc:  # noqa: BLE001 -- every driver has its own errors for this
            detail = params.error_text(exc) or type(exc).__name__
            raise CannotConnect(params.display(), detail, check=self.vendor.connect_check) from None

    @abstractmethod
    def driver_connect(self, *, application: str) -> Any:
        """The driver's connection, in autocommit, named ``application`` where the server shows it."""

    def open_monitor(self) -> Target:
        """A second connection for watching blockers and progress while a statement runs."""
        other = type(self)(self.vendor, self.params)
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
                cursor.execute(sql.replace("%s", self.vendor.placeholder), params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    @contextmanager
    def read_only(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None) -> Iterator[None]:
        """A transaction that may only read (the vendor's ``read_only``), rolled back after:
        the queries a runbook's field defaults ran while planning, run again at preflight."""
        start, undo = self.vendor.read_only
        self.set_timeouts(lock_timeout=lock_timeout, statement_timeout=statement_timeout, local=False)
        self.begin_read_only(start)
        try:
            yield
        finally:
            self.rollback()
            if undo is not None:
                self.execute(undo)

    def begin_read_only(self, start: str) -> None:
        """Open the read-only transaction: ``start`` sets it before BEGIN (MySQL refuses it in
        a transaction; SQLite's PRAGMA holds for the session)."""
        self.execute(start)
        self.execute("BEGIN")

    def read_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query a field default ran while planning, typed as Django's
        connection types them there (runbook.json_rows makes both sides' values comparable)."""
        return self.execute(sql)

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

    @abstractmethod
    def session_id(self) -> int:
        """The server's id of this connection's session (what blockers are asked about)."""

    @abstractmethod
    def server_version(self) -> str: ...

    def driver_name(self) -> str | None:
        """The driver and its version where the operator chooses one ("PyMySQL 1.1.1"), for
        the preflight report and the journal; None where there is no choice."""
        return None

    def pooler_in_the_way(self) -> str | None:
        """Why the connection goes through a connection pooler rather than straight to the
        server (None: it does not, as far as byhand can tell)."""
        return None

    def quote_name(self, name: str) -> str:
        return self.vendor.quote_name(name)

    # -- timeouts and errors ---------------------------------------------------------

    @abstractmethod
    def set_timeouts(self, *, lock_timeout: timedelta, statement_timeout: timedelta | None, local: bool) -> None:
        """Lock and statement timeouts for the open transaction (``local``) or the session."""

    def lock_timeout_text(self, lock_timeout: timedelta) -> str:
        """``lock_timeout`` as this server applies it, for messages: "0.1s", "none"."""
        return f"{lock_timeout.total_seconds():g}s" if lock_timeout else "none"

    @abstractmethod
    def is_lock_timeout(self, exc: BaseException) -> bool:
        """A lock timeout or deadlock: worth a retry."""

    @abstractmethod
    def is_connection_lost(self, exc: BaseException) -> bool: ...

    def is_permission_denied(self, exc: BaseException) -> bool:
        """The database refused for want of a privilege (on a table, a schema, the catalogue)."""
        return False

    @abstractmethod
    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exception classes for anything the database refused."""

    def needs_autocommit(self, sql: str) -> bool:
        """True for statements that cannot run inside a transaction block."""
        return False

    def least_lock_timeout(self, observed: Mapping[str, Any] | None) -> timedelta:
        """The least lock timeout for what the rehearsal ``observed`` (shorter loses work)."""
        return timedelta(0)

    def blocks_nobody_while_waiting(self, sql: str) -> bool:
        """True for statements whose lock waits do not queue the application's queries
        (PostgreSQL's CONCURRENTLY forms)."""
        return False

    def runs_alone(self, sql: str) -> bool:
        """True for statements that commit by themselves (MySQL DDL), so that their
        journal row cannot share their transaction."""
        return self.needs_autocommit(sql)

    # -- blockers and progress (called on a monitor connection) ------------------------

    def find_blockers(
        self, *, waiting_session: int, tables: list[str], older_than: timedelta, snapshots: bool = False
    ) -> list[Blocker]:
        """Sessions that block ``waiting_session`` now, or that hold a lock on ``tables`` (or
        on tables tied to them by a foreign key) in a transaction older than ``older_than``
        (they held it for the whole failed wait); with ``snapshots``, also the sessions
        whose snapshot is older than that (what CREATE INDEX CONCURRENTLY waits for)."""
        return []

    @abstractmethod
    def cancel(self, blocker: Blocker) -> None: ...

    @abstractmethod
    def terminate(self, blocker: Blocker) -> None: ...

    def progress(self, *, session: int) -> str | None:
        """What a long statement of ``session`` is doing (index build phase and %), if known."""
        return None

    # -- one operator at a time ------------------------------------------------------

    @abstractmethod
    def try_run_lock(self, name: str) -> bool:
        """Take the run lock ``name`` if nobody holds it; held until released or disconnected."""

    @abstractmethod
    def release_run_lock(self, name: str) -> None: ...

    @abstractmethod
    def run_lock_holder(self, name: str) -> str | None:
        """Who holds the run lock, as far as the server can tell (None: nobody)."""

    # -- catalog ---------------------------------------------------------------------

    def read_privilege(self, table: str) -> str:
        """What to grant a user that may not read ``table`` (review and status read it)."""
        return f"SELECT on {table}"

    @abstractmethod
    def table_exists(self, name: str) -> bool: ...

    def has_table_to_read(self, name: str) -> bool:
        """Whether table ``name`` exists, before reading it. Where the catalogue lists only the
        tables the user has a privilege on (MySQL), one it does not list may exist all the
        same: the vendor then tries to read it, and raises the refusal."""
        return self.table_exists(name)

    def recorded_migrations(self) -> set[tuple[str, str]] | None:
        """The (app, name) rows of django_migrations; None when the table does not exist."""
        if not self.has_table_to_read("django_migrations"):
            return None
        q = self.quote_name
        rows = self.execute(f"SELECT {q('app')}, {q('name')} FROM {q('django_migrations')}")
        return {(str(app), str(name)) for app, name in rows}

    @abstractmethod
    def state_of(self, sql: str) -> str:
        """A fingerprint of what ``sql`` changes, taken before it runs and compared after a
        crash to decide whether a statement that commits alone took effect."""

    def leftover_of(self, sql: str) -> str | None:
        """SQL that removes what a failed attempt of ``sql`` left behind (an INVALID index)."""
        return None

    def refusal_advice(self, exc: BaseException) -> str | None:
        """What to do when an online form's statement is refused (MariaDB: its ALGORITHM), or None."""
        return None

    def timestamp(self, moment: datetime) -> Any:
        """``moment`` (UTC, aware) as the driver should bind it for the journal's columns."""
        return moment

    def moment(self, value: Any) -> Any:
        """A journal timestamp as read back: an aware UTC datetime (MySQL's datetime(6) holds
        naive UTC, SQLite text, PostgreSQL the session's time zone)."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            aware = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
            return aware.astimezone(timezone.utc)
        return value
