"""One object per database vendor: its facts, the runbook's control statements, the
scratch copy (planning side) and the Target class that applies runbooks (operating side).

Nothing outside ``byhand.vendors`` asks which vendor it has: it asks the vendor object.
On the planning side, the facts Django already knows are read from ``connection.features``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from byhand.exceptions import RehearsalError
from byhand.vendors.observing import Observer
from byhand.vendors.online import OnlineForm
from byhand.vendors.params import ConnectionParams, params_from_settings
from byhand.vendors.target import Target

__all__ = [
    "SCRATCH_PREFIX",
    "Column",
    "ScratchDatabase",
    "ServerVendor",
    "Vendor",
    "fingerprint",
    "own_connection",
    "scratch_name",
]

#: A column of a table byhand creates: name, portable type ("varchar(N)", "integer",
#: "timestamp", "text"), NULL allowed. Each vendor renders the types it needs to.
Column = tuple[str, str, bool]


@dataclass
class ScratchDatabase:
    """A throw-away copy of the target's schema (never its data)."""

    settings: dict[str, Any]  # a Django DATABASES entry pointing at the copy
    fingerprint: str  # sha256 of the schema as dumped from the target
    server_version: str


def own_connection(connection: Any, settings: dict[str, Any] | None = None) -> Any:
    """A new Django connection of ``connection``'s class and alias, to ``settings`` (its
    own by default), that never draws from a connection pool. Django (5.1+) keeps its
    PostgreSQL pools per alias: a connection made under the target's alias for the
    scratch copy would otherwise be handed the target's pooled connections, whatever
    NAME its settings give, and the rehearsal would run on the target."""
    settings = dict(connection.settings_dict if settings is None else settings)
    settings["OPTIONS"] = {key: value for key, value in settings.get("OPTIONS", {}).items() if key != "pool"}
    return connection.__class__(settings, connection.alias)


#: How a scratch database's name starts unless the project says otherwise
#: (settings.BYHAND_SCRATCH_PREFIX, --scratch-prefix).
SCRATCH_PREFIX = "byhand_scratch_"


def scratch_name(prefix: str = SCRATCH_PREFIX) -> str:
    """A database name no one else uses: <prefix><pid>_<random>."""
    return f"{prefix}{os.getpid()}_{secrets.token_hex(4)}"


def fingerprint(schema_text: str) -> str:
    """Hash a schema dump, ignoring comment and blank lines (they carry dates and versions)."""
    kept = [
        line
        for line in schema_text.splitlines()
        if line.strip() and not line.startswith("--") and not line.startswith("/*M!")
    ]
    return "sha256:" + hashlib.sha256("\n".join(kept).encode()).hexdigest()


class Vendor(ABC):
    """Everything byhand knows of one vendor. ``name`` is Django's ``connection.vendor``."""

    name: ClassVar[str]
    #: As people name it, in messages.
    title: ClassVar[str]
    #: The operating side's connection class for this vendor.
    target_class: ClassVar[type[Target]]
    #: The driver's parameter marker.
    placeholder: ClassVar[str] = "%s"
    #: A second connection can watch blockers and progress while a statement runs.
    watchable: ClassVar[bool] = True
    #: DATABASES OPTIONS that change where or how the driver connects (and so must reach it).
    passed_options: ClassVar[frozenset[str]] = frozenset()
    #: (owner, method) of a Django connection that quote by reading the driver connection
    #: (``ops`` or ``connection``): the rehearsal thread guards them (statement_thread.py).
    quoting_methods: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: Make the scratch copy in a thread while Django's states are computed.
    copies_in_background: ClassVar[bool] = True
    #: Run the scratch copy's statements in a thread while the next states are computed
    #: (planning/statement_thread.py): the server (or SQLite, which lets go of the GIL
    #: while it works) runs DDL on one core while Django computes states on the other.
    rehearses_in_thread: ClassVar[bool] = True
    #: ``byhand sql --online`` has forms for it (Vendor.online_form).
    online_forms: ClassVar[bool] = False
    #: DDL rolls back: atomic migrations are one transaction, BEGIN/COMMIT in the runbook.
    #: (The planning side asks Django's features.can_rollback_ddl; a test keeps them equal.)
    transactional_ddl: ClassVar[bool] = True
    #: String literals escape with backslashes (MySQL), not only by doubling quotes.
    backslash_escapes: ClassVar[bool] = False
    #: Double-quoted text is a string literal (MySQL's default SQL mode), not a name.
    double_quoted_strings: ClassVar[bool] = False
    #: What to check when the connection fails, for the error message.
    connect_check: ClassVar[str] = "the host, port, user, password and database name"
    #: Portable column types (Column) this vendor writes otherwise.
    column_types: ClassVar[dict[str, str]] = {}
    #: The journal's "id" column.
    identity_column: ClassVar[str]
    #: Indexes are declared inside CREATE TABLE (MySQL has no CREATE INDEX IF NOT EXISTS).
    inline_index: ClassVar[bool] = False
    #: Run first in a transaction of the target that may only read (a default that queries
    #: the database, evaluated while planning), and after it (None: nothing to undo).
    read_only: ClassVar[tuple[str, str | None]] = ("SET TRANSACTION READ ONLY", None)

    # -- facts of both sides ------------------------------------------------------------

    def quote_name(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def target(self, params: ConnectionParams) -> Target:
        """An unconnected Target for ``params``."""
        return self.target_class(self, params)

    def params_from_settings(self, settings: dict[str, Any]) -> ConnectionParams:
        """The connection of a Django DATABASES entry, for the operating side."""
        return params_from_settings(settings, vendor=self.name, passed_options=self.passed_options)

    def table_ddl(self, table: str, columns: Sequence[Column], *, index: str, indexed: Sequence[str]) -> str:
        """CREATE TABLE IF NOT EXISTS with an "id" key, ``columns``, and an index on ``indexed``."""
        q = self.quote_name
        lines = [f"    {q('id')} {self.identity_column}"]
        for name, kind, null in columns:
            lines.append(f"    {q(name)} {self.column_types.get(kind, kind)} {'NULL' if null else 'NOT NULL'}")
        on = ", ".join(q(c) for c in indexed)
        if self.inline_index:
            lines.append(f"    INDEX {q(index)} ({on})")
        create = f"CREATE TABLE IF NOT EXISTS {q(table)} (\n" + ",\n".join(lines) + "\n);"
        return create if self.inline_index else f"{create}\nCREATE INDEX IF NOT EXISTS {q(index)} ON {q(table)} ({on});"

    # -- the runbook's control statements -----------------------------------------------

    def online_form(self, sql: str, observed: Mapping[str, Any] | None = None) -> OnlineForm | None:
        """The statements that reach what Django's statement ``sql`` does without holding
        its table while they read every row (``byhand sql --online``), given what the
        rehearsal ``observed`` when it ran it; None: it has none, or this vendor has no
        online forms."""
        return None

    def online_exempt_tables(self, connection: Any) -> set[str]:
        """Tables of the (scratch) database ``connection`` whose statements keep Django's form
        under ``--online``, the forms not working on them (PostgreSQL: partitioned tables)."""
        return set()

    def before_migration(self, *, transaction: bool) -> list[str]:
        """Control statements that open a migration block (``transaction``: BEGIN/COMMIT
        around it, for an atomic migration where DDL rolls back)."""
        return ["BEGIN;"] if transaction else []

    def after_migration(self, *, transaction: bool) -> list[str]:
        """Control statements that close a migration block."""
        return ["COMMIT;"] if transaction else []

    def preamble(self) -> list[str]:
        """Control statements at the top of the runbook."""
        return []

    def control_statements(self) -> frozenset[str]:
        """Every statement this vendor's runbooks hold outside steps."""
        placed = [*self.before_migration(transaction=True), *self.after_migration(transaction=True), *self.preamble()]
        return frozenset(placed)

    def control_failure(self, sql: str, rows: list[tuple[Any, ...]]) -> tuple[str, str] | None:
        """When control statement ``sql`` returned ``rows``: None, or what failed (a check's
        name) and how (SQLite's foreign key check lists violations instead of failing)."""
        return None

    # -- planning side: the text Django sends ------------------------------------------

    @contextmanager
    def twin(self, connection: Any) -> Iterator[Any]:
        """A second connection to ``connection``'s database, set up by Django as it is, so
        that it quotes and composes the same text (encoding, adapters, SQL mode) while
        ``connection`` runs a statement in the rehearsal thread; None where quoting reads
        no connection."""
        twin = own_connection(connection)
        try:
            yield twin
        finally:
            twin.close()

    def observer(self, connection: Any) -> Observer:
        """What tells, while the rehearsal runs them on ``connection``, what its statements do."""
        return Observer()

    @abstractmethod
    def render_executed(self, connection: Any, sql: str, params: Any) -> str:
        """The statement text the database received for ``cursor.execute(sql, params)``."""

    @abstractmethod
    def quote_literal(self, connection: Any, value: Any) -> str:
        """``value`` as an SQL literal, exactly as the driver would send it as a parameter
        (not Django's schema-editor quote_value, which doubles % on some versions)."""

    @abstractmethod
    def now_sql(self, *, use_tz: bool) -> str:
        """An SQL expression for django_migrations.applied as Django would write it."""

    @abstractmethod
    def server_version(self, connection: Any) -> str: ...

    @abstractmethod
    def foreign_key_actions(self, cursor: Any, table: str) -> dict[str, str]:
        """The ON DELETE action of each foreign key of ``table``, by the name Django's
        get_constraints() gives it, as the catalog spells it (NO ACTION, RESTRICT,
        CASCADE, SET NULL, SET DEFAULT). get_constraints() does not say it, and
        get_relations() says it only from Django 6.1, by column, and not RESTRICT."""

    @abstractmethod
    def column_type_names(self, cursor: Any, table: str) -> dict[str, str]:
        """Each column of ``table`` and its type as the database names it, with length,
        precision and scale (varchar(150), numeric(10,2), bigint, hstore): what verify
        compares and prints. Django's introspection gives driver type codes instead
        (PostgreSQL OIDs, which differ per database for an extension's types, and say
        nothing of a varchar's length)."""

    def check_clauses(self, cursor: Any, table: str) -> dict[str, tuple[str, bool]]:
        """Each CHECK constraint of ``table`` by the name the server gives it: its clause as
        the server spells it, and whether the server chose that name (no migration did).
        get_constraints() says neither. Empty where verify compares checks by Django's
        introspection alone (PostgreSQL, SQLite: a clause changed by hand goes unseen)."""
        return {}

    @abstractmethod
    def database_name(self, connection: Any) -> str:
        """The database ``connection`` is really on, as the server says (not its settings)."""

    def expected_database_name(self, settings: dict[str, Any]) -> str:
        """What database_name() says for a connection opened with these settings."""
        return str(settings["NAME"])

    # -- planning side: the scratch database -------------------------------------------

    @abstractmethod
    def make_scratch(
        self, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX, unwanted: threading.Event | None = None
    ) -> ScratchDatabase:
        """A copy of the target's schema (never its data) on ``server``'s server. Once
        ``unwanted`` is set, the copy stops (CopyUnwanted) and what it made is dropped."""

    @abstractmethod
    def make_empty_scratch(self, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX) -> ScratchDatabase:
        """A new, empty database on ``server``'s server (``byhand verify`` migrates it)."""

    @abstractmethod
    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None: ...

    def prepare_scratch(self, connection: Any) -> None:  # noqa: B027 -- most vendors need none
        """Session settings for the throw-away copy: it need not survive a crash."""


class ServerVendor(Vendor):
    """A vendor with a server: the scratch copy is a new database on it, loaded from a
    schema dump made with the vendor's own tools."""

    #: The query for database_name.
    current_database_sql: ClassVar[str]
    #: What to grant when CREATE DATABASE is refused, for the error message.
    create_hint: ClassVar[str]

    def database_name(self, connection: Any) -> str:
        with connection.cursor() as cursor:
            cursor.execute(self.current_database_sql)
            return str(cursor.fetchone()[0])

    def make_scratch(
        self, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX, unwanted: threading.Event | None = None
    ) -> ScratchDatabase:
        """Dump the target's schema while the database is created, then load the dump."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="byhand-dump") as pool:
            # a client process: no Django connection
            # Not with signals blocked: pg_dump or mysqldump would inherit the mask.
            dumping = pool.submit(self.dump_schema, target, unwanted=unwanted)
            scratch = self.make_empty_scratch(target, server=server, prefix=prefix)
            try:
                schema = dumping.result()
                scratch.fingerprint = fingerprint(schema)
                self.load_schema(schema, scratch=scratch, server=server, unwanted=unwanted)
            except BaseException:
                self.drop_scratch(scratch, server=server)
                raise
        return scratch

    def make_empty_scratch(self, target: Any, *, server: Any, prefix: str = SCRATCH_PREFIX) -> ScratchDatabase:
        name = scratch_name(prefix)
        scratch = ScratchDatabase(
            settings={**server.settings_dict, "NAME": name}, fingerprint="", server_version=self.server_version(target)
        )
        try:
            self.create_database(name, target=target, server=server)
        except Exception as exc:
            raise RehearsalError(
                f"could not create the scratch database {name!r} on the server of '{server.alias}' "
                f"({' '.join(str(exc).split())}). byhand works on a scratch database (a schema-only copy "
                f"to rehearse on, or one to migrate for verify); {self.create_hint.format(prefix=prefix)}, "
                "or name another alias of the same server version with --scratch-database."
            ) from exc
        except BaseException:  # Ctrl-C, SIGTERM: it may exist already (DROP ... IF EXISTS)
            self.drop_scratch(scratch, server=server)
            raise
        return scratch

    @abstractmethod
    def dump_schema(self, target: Any, *, unwanted: threading.Event | None = None) -> str: ...

    @abstractmethod
    def create_database(self, name: str, *, target: Any, server: Any) -> None: ...

    @abstractmethod
    def load_schema(
        self, schema: str, *, scratch: ScratchDatabase, server: Any, unwanted: threading.Event | None = None
    ) -> None: ...
