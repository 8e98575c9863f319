"""What byhand needs to know about a database vendor, and the parts they share."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from byhand.exceptions import CopyUnwanted, RehearsalError

__all__ = ["ScratchDatabase", "Vendor", "fingerprint", "own_connection", "run_client", "scratch_name"]


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


def scratch_name() -> str:
    """A database name no one else uses: byhand_scratch_<pid>_<random>."""
    return f"byhand_scratch_{os.getpid()}_{secrets.token_hex(4)}"


def fingerprint(schema_text: str) -> str:
    """Hash a schema dump, ignoring comment and blank lines (they carry dates and versions)."""
    kept = [
        line
        for line in schema_text.splitlines()
        if line.strip() and not line.startswith("--") and not line.startswith("/*M!")
    ]
    return "sha256:" + hashlib.sha256("\n".join(kept).encode()).hexdigest()


def run_client(
    args: Sequence[str],
    *,
    env: dict[str, str] | None,
    stdin: str | None = None,
    what: str,
    unwanted: threading.Event | None = None,
) -> str:
    """Run a vendor CLI (pg_dump, psql, mysqldump, mysql) and return its output.

    The password travels in the environment only, never on the command line,
    so that neither ``ps`` nor an error message shows it. Once ``unwanted`` is set
    (nobody needs the result any more), the program is killed and CopyUnwanted raised.
    """
    full_env = {**os.environ, **(env or {})}
    try:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE if stdin is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            text=True,
        )
    except FileNotFoundError:
        raise RehearsalError(
            f"could not {what}: the program {args[0]!r} is not installed. Install the "
            "database's client tools on this host (same major version as the server)."
        ) from None
    stopped = threading.Event()
    with process:
        if unwanted is not None:
            finished = threading.Event()
            watcher = threading.Thread(
                target=_stop_when_unwanted, args=(process, unwanted, finished, stopped), name="byhand-client-watch"
            )
            watcher.start()
        try:
            stdout, stderr = process.communicate(stdin)
        finally:
            if unwanted is not None:
                finished.set()
                watcher.join()
    if stopped.is_set():
        raise CopyUnwanted(f"{args[0]} was stopped: the scratch copy is not needed")
    if process.returncode != 0:
        detail = (stderr or stdout).strip().splitlines()
        raise RehearsalError(f"could not {what}: {args[0]} said: {' / '.join(detail[-3:])}")
    return stdout


def _stop_when_unwanted(
    process: subprocess.Popen[str], unwanted: threading.Event, finished: threading.Event, stopped: threading.Event
) -> None:
    """Beside run_client's communicate(): kill the program once ``unwanted`` is set. (A
    communicate() with a timeout, retried, would stop writing the program's input.)"""
    while not finished.wait(UNWANTED_POLL):
        if unwanted.is_set():
            stopped.set()
            process.kill()
            return


#: Seconds between two looks at whether a vendor CLI's work is still wanted.
UNWANTED_POLL = 0.05


class Vendor:
    """The interface each vendor module implements (see postgresql.py, mysql.py, sqlite.py)."""

    name: str
    #: BEGIN/COMMIT around atomic migrations (transactional DDL).
    can_rollback_ddl: bool
    #: Make the scratch copy in a thread while Django's states are computed (server vendors).
    copies_in_background: bool = True
    #: Whether the rehearsal runs the scratch copy's statements in a thread while the next
    #: states are computed (rehearsing.Deferred): the server (or SQLite, which lets go
    #: of the GIL while it works) runs DDL on one core while Django computes states on
    #: the other. Measured with benchmarks/rehearsal_thread.py; see benchmarks/RESULTS.md.
    rehearses_in_thread: bool = True

    @contextmanager
    def twin(self, connection: Any) -> Iterator[Any]:
        """A second connection to ``connection``'s database, set up by Django as it is, so
        that it quotes and composes the same text (encoding, adapters, SQL mode) while
        ``connection`` runs a statement in the rehearsal thread (rehearsing.Deferred);
        None where quoting reads no connection."""
        twin = own_connection(connection)
        try:
            yield twin
        finally:
            twin.close()

    def render_executed(self, connection: Any, sql: str, params: Any) -> str:
        """The statement text the database received for ``cursor.execute(sql, params)``."""
        raise NotImplementedError

    def quote_literal(self, connection: Any, value: Any) -> str:
        """``value`` as an SQL literal, exactly as the driver would send it as a parameter
        (not Django's schema-editor quote_value, which doubles % on some versions)."""
        raise NotImplementedError

    def now_sql(self, *, use_tz: bool) -> str:
        """An SQL expression for django_migrations.applied as Django would write it."""
        raise NotImplementedError

    def server_version(self, connection: Any) -> str:
        raise NotImplementedError

    def database_name(self, connection: Any) -> str:
        """The database ``connection`` is really on, as the server says (not its settings)."""
        with connection.cursor() as cursor:
            cursor.execute(self.current_database_sql)
            return str(cursor.fetchone()[0])

    def expected_database_name(self, settings: dict[str, Any]) -> str:
        """What database_name() says for a connection opened with these settings."""
        return str(settings["NAME"])

    #: The query for database_name (server vendors).
    current_database_sql = ""

    #: What to grant when CREATE DATABASE is refused, for the error message.
    create_hint = ""

    def make_scratch(self, target: Any, *, server: Any, unwanted: threading.Event | None = None) -> ScratchDatabase:
        """Copy the target's schema into a new database on ``server``'s server:
        dump it with the vendor's tool while the database is created, load the dump.
        Once ``unwanted`` is set, the copy stops (CopyUnwanted) and what it made is dropped."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="byhand-dump") as pool:
            # a client process: no Django connection
            dumping = pool.submit(self.dump_schema, target, unwanted=unwanted)
            scratch = self.make_empty_scratch(target, server=server)
            try:
                schema = dumping.result()
                scratch.fingerprint = fingerprint(schema)
                self.load_schema(schema, scratch=scratch, server=server, unwanted=unwanted)
            except BaseException:
                self.drop_scratch(scratch, server=server)
                raise
        return scratch

    def make_empty_scratch(self, target: Any, *, server: Any) -> ScratchDatabase:
        """A new, empty database on ``server``'s server (``byhand verify`` migrates it)."""
        name = scratch_name()
        scratch = ScratchDatabase(
            settings={**server.settings_dict, "NAME": name}, fingerprint="", server_version=self.server_version(target)
        )
        try:
            self.create_database(name, target=target, server=server)
        except Exception as exc:
            raise RehearsalError(
                f"could not create the scratch database {name!r} on the server of '{server.alias}' "
                f"({' '.join(str(exc).split())}). byhand works on a scratch database (a schema-only copy "
                f"to rehearse on, or one to migrate for verify); {self.create_hint}, or name another "
                "alias of the same server version with --scratch-database."
            ) from exc
        except BaseException:  # Ctrl-C, SIGTERM: it may exist already (DROP ... IF EXISTS)
            self.drop_scratch(scratch, server=server)
            raise
        return scratch

    def dump_schema(self, target: Any, *, unwanted: threading.Event | None = None) -> str:
        raise NotImplementedError

    def create_database(self, name: str, *, target: Any, server: Any) -> None:
        raise NotImplementedError

    def load_schema(
        self, schema: str, *, scratch: ScratchDatabase, server: Any, unwanted: threading.Event | None = None
    ) -> None:
        raise NotImplementedError

    def drop_scratch(self, scratch: ScratchDatabase, *, server: Any) -> None:
        raise NotImplementedError

    def prepare_scratch(self, connection: Any) -> None:
        """Session settings for the throw-away copy: it need not survive a crash."""

    def before_migration(self, *, atomic: bool) -> list[str]:
        """Control statements that open a migration block."""
        return ["BEGIN;"] if atomic and self.can_rollback_ddl else []

    def after_migration(self, *, atomic: bool) -> list[str]:
        """Control statements that close a migration block."""
        return ["COMMIT;"] if atomic and self.can_rollback_ddl else []

    def preamble(self) -> list[str]:
        """Control statements at the top of the runbook."""
        return []
