"""What the tests share: real databases (fresh ones per test), the vendors' own CLIs, migrate
with its SQL captured, runbooks written and applied, the console script run, the journal read.

A test that needs the server of the vendor under test is marked ``needs_server``
(conftest.py skips it, or fails it in CI, when the server is down)."""

from __future__ import annotations

import atexit
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import RunPython

from byhand.events import Event
from byhand.operating.applying import ApplyOptions, ApplyResult, apply_runbook
from byhand.planning.scratch import use_database
from byhand.runbook import Block, Runbook, parse_runbook, terminate
from byhand.vendors import get_target, get_vendor
from byhand.vendors.params import parse_database_url
from byhand.vendors.target import Target

VENDOR = connections["default"].vendor
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def require_server() -> None:
    """Skip (or, in CI, fail) when the vendor under test has a server that is down."""
    if VENDOR == "sqlite":
        return
    admin = admin_connection("default")
    try:
        admin.ensure_connection()
    except Exception as exc:  # noqa: BLE001 -- whatever the driver raises: down or refusing
        message = f"{VENDOR} server unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        admin.close()


def admin_connection(alias: str) -> Any:
    """A connection to the server of ``alias`` that is not inside any test database."""
    settings = dict(connections[alias].settings_dict)
    settings["NAME"] = "postgres" if VENDOR == "postgresql" else ""
    admin = connections[alias].__class__(settings, f"{alias}_admin")
    # django.contrib.postgres's connection_created receiver (hstore's type OIDs) looks the
    # new connection up by its alias: known under it, it is this one.
    connections[admin.alias] = admin
    return admin


@contextmanager
def fresh_database(alias: str = "default") -> Iterator[dict[str, Any]]:
    """A new, empty database of the vendor under test; dropped afterwards."""
    base = dict(connections[alias].settings_dict)
    if VENDOR == "sqlite":
        handle, path = tempfile.mkstemp(prefix="byhand_test_", suffix=".sqlite3")
        os.close(handle)
        try:
            yield {**base, "NAME": path}
        finally:
            Path(path).unlink(missing_ok=True)
            Path(path + ".byhand_journal.lock").unlink(missing_ok=True)  # byhand apply's run lock
        return
    if VENDOR == "postgresql":
        pool = _pool(alias)
        name = pool.take()
        try:
            yield {**base, "NAME": name}
        finally:
            pool.drop(name)
        return
    name = f"byhand_test_{secrets.token_hex(4)}"
    admin = admin_connection(alias)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield {**base, "NAME": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


class _DatabasePool:
    """tests/database_pool.py, started on first use: PostgreSQL's empty databases made
    ahead and dropped behind (about 0.4 s each), beside the tests."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from psycopg.conninfo import make_conninfo

        conninfo = make_conninfo(
            host=settings["HOST"] or None,
            port=settings["PORT"] or None,
            user=settings["USER"] or None,
            password=settings["PASSWORD"] or None,
            dbname="postgres",
        )
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("database_pool.py")), conninfo],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        atexit.register(self.close)

    def take(self) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write("take\n")
        self.process.stdin.flush()
        name = self.process.stdout.readline().strip()
        assert name, f"tests/database_pool.py ended (exit status {self.process.poll()})"
        return name

    def drop(self, name: str) -> None:
        assert self.process.stdin
        self.process.stdin.write(f"drop {name}\n")
        self.process.stdin.flush()

    def close(self) -> None:
        """The pool drops what is left when its input ends."""
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=120)


_pools: dict[str, _DatabasePool] = {}


def _pool(alias: str) -> _DatabasePool:
    if alias not in _pools:
        _pools[alias] = _DatabasePool(connections[alias].settings_dict)
    return _pools[alias]


def run_with_cli(alias: str, settings: dict[str, Any], runbook: Path) -> None:
    """Run a runbook with the vendor's own CLI, stopping at the first error."""
    client = connections[alias].client
    args, env = client.settings_to_cmd_args_env(settings, [])
    if VENDOR == "postgresql":
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(runbook), *args[1:]]
        stdin = None
    elif VENDOR == "mysql":
        command, stdin = ["mysql", *args[1:]], runbook.read_text()
    else:
        command, stdin = ["sqlite3", "-bail", settings["NAME"]], runbook.read_text()
    done = subprocess.run(
        command, input=stdin, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{command[0]} failed: {done.stderr}"
    assert "FOREIGN KEY" not in done.stdout, done.stdout


@contextmanager
def capturing_migrate(alias: str) -> Iterator[dict[str, list[str]]]:
    """Record, per migration, the statements Django's schema editor sends while migrate
    runs (the oracle), leaving out what RunPython code executes."""
    captured: dict[str, list[str]] = {}
    state = {"migration": None, "editor": 0, "python": 0}
    connection = connections[alias]
    vendor = get_vendor(connection.vendor)
    original_execute = BaseDatabaseSchemaEditor.execute
    original_apply = MigrationExecutor.apply_migration
    original_unapply = MigrationExecutor.unapply_migration
    original_forwards = RunPython.database_forwards
    original_backwards = RunPython.database_backwards

    def execute(self: Any, sql: Any, params: Any = ()) -> Any:
        state["editor"] += 1
        try:
            return original_execute(self, sql, params)
        finally:
            state["editor"] -= 1

    def tracking(original: Any) -> Any:
        def run(self: Any, migration_state: Any, migration: Any, *args: Any, **kwargs: Any) -> Any:
            state["migration"] = f"{migration.app_label}.{migration.name}"
            captured.setdefault(state["migration"], [])
            try:
                return original(self, migration_state, migration, *args, **kwargs)
            finally:
                state["migration"] = None

        return run

    def python(original: Any) -> Any:
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            state["python"] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                state["python"] -= 1

        return run

    def wrapper(execute_: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute_(sql, params, many, context)  # a statement that failed did nothing
        if state["migration"] and state["editor"] and not state["python"]:
            text = terminate(vendor.render_executed(connection, sql, params))
            captured[state["migration"]].append(text)
        return result

    patches = [
        (BaseDatabaseSchemaEditor, "execute", execute),
        (MigrationExecutor, "apply_migration", tracking(original_apply)),
        (MigrationExecutor, "unapply_migration", tracking(original_unapply)),
        (RunPython, "database_forwards", python(original_forwards)),
        (RunPython, "database_backwards", python(original_backwards)),
    ]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        with connection.execute_wrapper(wrapper):
            yield captured
    finally:
        BaseDatabaseSchemaEditor.execute = original_execute
        MigrationExecutor.apply_migration = original_apply
        MigrationExecutor.unapply_migration = original_unapply
        RunPython.database_forwards = original_forwards
        RunPython.database_backwards = original_backwards


def schema_of(alias: str) -> dict[str, Any]:
    """Tables, columns and constraints as Django's introspection sees them."""
    connection = connections[alias]
    schema: dict[str, Any] = {}
    with connection.cursor() as cursor:
        names: dict[Any, str] = {}

        def type_of(code: Any) -> Any:
            # An extension's types (hstore) have another OID in every database that made them
            # (so the names are looked up per call: one database).
            if connection.vendor != "postgresql":
                return code
            if code not in names:
                cursor.execute("SELECT %s::regtype::text", [code])
                names[code] = cursor.fetchone()[0]
            return names[code]

        for table in sorted(connection.introspection.table_names(cursor)):
            columns = [
                (c.name, type_of(c.type_code), c.null_ok, getattr(c, "default", None))
                for c in connection.introspection.get_table_description(cursor, table)
            ]
            constraints = connection.introspection.get_constraints(cursor, table)
            schema[table] = {"columns": columns, "constraints": constraints}
        if connection.vendor == "postgresql":  # what introspection leaves out: validity, exact definitions
            for table, entry in _pg_catalog(cursor).items():
                if table in schema:
                    schema[table]["catalog"] = entry
    return schema


#: Per table of the current schema: each constraint's definition and whether it is validated,
#: each index's definition and whether it is valid (an online form must leave none NOT VALID
#: or INVALID), as PostgreSQL prints them.
_PG_CATALOG = """
SELECT t.relname, 'constraint', c.conname, pg_get_constraintdef(c.oid), c.convalidated
  FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
 WHERE t.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT t.relname, 'index', i.relname, pg_get_indexdef(x.indexrelid), x.indisvalid AND x.indisready
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
 WHERE t.relnamespace = current_schema()::regnamespace
"""


def _pg_catalog(cursor: Any) -> dict[str, list[tuple[Any, ...]]]:
    cursor.execute(_PG_CATALOG)
    catalog: dict[str, list[tuple[Any, ...]]] = {}
    for table, *row in sorted(cursor.fetchall()):
        catalog.setdefault(table, []).append(tuple(row))
    return catalog


def target_for(settings: dict[str, Any]) -> Target:
    """A connected operating-side Target for a DATABASES entry."""
    target = get_target(parse_database_url(database_url(settings)))
    target.connect()
    return target


def apply(
    path: Path,
    settings: dict[str, Any],
    *,
    sleep: Callable[[float], None] = lambda s: None,
    watch: Callable[[Event], None] = lambda e: None,
    **options: Any,
) -> tuple[list[Event], ApplyResult]:
    """Apply in this process, collecting events (each also given to ``watch`` as it happens);
    retries do not wait unless ``sleep`` does."""
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        watch(event)

    target = target_for(settings)
    try:
        result = apply_runbook(
            parse_runbook(path.read_text()), target, options=ApplyOptions(**options), on_event=sink, sleep=sleep
        )
    finally:
        target.close()
    return events, result


def database_url(settings: dict[str, Any]) -> str:
    """The byhand apply URL of a Django DATABASES entry (test servers have no passwords)."""
    if VENDOR == "sqlite":
        return f"sqlite:///{settings['NAME']}"  # an absolute path: sqlite:////tmp/...
    scheme = "postgres" if VENDOR == "postgresql" else "mysql"
    user = settings.get("USER") or ("postgres" if VENDOR == "postgresql" else "root")
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or (5432 if VENDOR == "postgresql" else 3306)
    return f"{scheme}://{user}@{host}:{port}/{settings['NAME']}"


def recorded_rows(alias: str) -> set[tuple[str, str]]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations")
        return {tuple(row) for row in cursor.fetchall()}


def write_runbook(alias: str, path: Path, *args: str, options: Sequence[str] = ()) -> Runbook:
    """``manage.py byhand sql ARGS --manual-steps [OPTIONS]`` for ``alias`` into ``path``."""
    call_command("byhand", "sql", *args, "--manual-steps", *options, "--database", alias, "-o", str(path))
    return parse_runbook(path.read_text())


def midway(settings: dict[str, Any], path: Path, *target: str, at: str = "0003") -> None:
    """Migrate ``settings`` with Django to shop ``at``, then write the runbook up to ``target``."""
    with use_database("default", settings):
        call_command("migrate", "shop", at, database="default", verbosity=0)
        write_runbook("default", path, *target)


def byhand(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script, with no Django settings in its environment."""
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [str(BIN / "byhand"), *args], capture_output=True, text=True, env={**environment, **(env or {})}, check=False
    )


def state(settings: dict[str, Any]) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """Schema as Django introspects it (without byhand's journal), and django_migrations rows."""
    with use_database("default", settings):
        tables = schema_of("default")
        rows = recorded_rows("default") if "django_migrations" in tables else set()
    tables.pop("byhand_journal", None)
    return tables, rows


def journal_rows(settings: dict[str, Any]) -> list[tuple[Any, ...]]:
    """byhand_journal's rows, oldest first: event, status, migration, statement index, attempts, detail."""
    target = target_for(settings)
    try:
        q = target.quote_name
        return target.execute(
            f"SELECT {q('event')}, {q('status')}, {q('migration')}, {q('statement_index')}, {q('attempts')}, "
            f"{q('detail')} FROM {q('byhand_journal')} ORDER BY {q('id')}"
        )
    finally:
        target.close()


__all__ = [
    "BIN",
    "INSTANT",
    "ROOT",
    "VENDOR",
    "admin_connection",
    "apply",
    "byhand",
    "capturing_migrate",
    "database_url",
    "fresh_database",
    "journal_rows",
    "masked",
    "midway",
    "oracle_step",
    "recorded_rows",
    "require_server",
    "run_with_cli",
    "schema_of",
    "state",
    "target_for",
    "use_database",
    "write_runbook",
]


#: A callable default (auth.0005 backwards: last_login default=timezone.now) is evaluated
#: when the SQL is made, so the runbook and migrate carry different instants; only those differ.
INSTANT = (re.compile(r"'\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?)?'"), "'<now>'")
Mask = tuple[re.Pattern[str], str]


def masked(sqls: list[str], masks: Sequence[Mask]) -> list[str]:
    """The statements with what differs from run to run (instants, fresh UUIDs) replaced."""
    for pattern, replacement in masks:
        sqls = [pattern.sub(replacement, sql) for sql in sqls]
    return sqls


def django_statements(block: Block) -> list[str]:
    """The schema statements of ``block`` as Django wrote them: an online form's statement
    in its place (the form itself is checked by the schema it builds)."""
    return [
        step.online["replaces"] if step.online else step.sql
        for step in block.steps
        if step.kind == "schema" and (step.online is None or step.online["part"] == 1)
    ]


def oracle_step(
    alias: str,
    a: dict[str, Any],
    b: dict[str, Any],
    path: Path,
    *args: str,
    c: dict[str, Any] | None = None,
    masks: Sequence[Mask] = (INSTANT,),
    sql_options: Sequence[str] = (),
) -> None:
    """The oracle. From the same start, migrate database A and run byhand's runbook for B
    with the vendor's CLI (and for C with byhand apply): the same statements per migration
    (``masks`` applied), the same schema, the same django_migrations rows. ``sql_options``
    go to byhand sql only."""
    ContentType.objects.clear_cache()
    with use_database(alias, b):
        runbook = write_runbook(alias, path, *args, options=sql_options)
    ContentType.objects.clear_cache()
    with use_database(alias, a):
        with capturing_migrate(alias) as executed:
            call_command("migrate", *args, database=alias, verbosity=0)
        schema_a, rows_a = schema_of(alias), recorded_rows(alias)
    with use_database(alias, b):
        run_with_cli(alias, b, path)
        schema_b, rows_b = schema_of(alias), recorded_rows(alias)
    schema_b.pop("byhand_journal", None)  # byhand's own (run-python between steps), never migrate's
    written = {
        block.migration: masked(django_statements(block), masks) for block in runbook.migrations if block.migration
    }
    assert written == {key: masked(sqls, masks) for key, sqls in executed.items()}
    assert schema_b == schema_a
    assert rows_b == rows_a
    if c is not None:
        apply(path, c, skip_manual_steps=True)
        with use_database(alias, c):
            schema_c, rows_c = schema_of(alias), recorded_rows(alias)
        schema_c.pop("byhand_journal", None)
        differ = {
            t: (schema_c.get(t), schema_b.get(t)) for t in {*schema_b, *schema_c} if schema_c.get(t) != schema_b.get(t)
        }
        assert schema_c == schema_b, f"byhand apply built another schema than the CLI (apply, CLI): {differ}"
        assert rows_c == rows_b


def make_shop_tables(target: Target) -> None:
    """shop_book (id, title) and django_migrations, as the vendor's DDL makes them."""
    vendor = get_vendor(VENDOR)
    columns = [("app", "varchar(255)", False), ("name", "varchar(255)", False), ("applied", "timestamp", False)]
    for table, made in (("shop_book", [("title", "varchar(200)", False)]), ("django_migrations", columns)):
        ddl = vendor.table_ddl(table, made, index=f"{table}_i", indexed=["id"])
        for statement in ddl.split(";\n"):
            target.execute(statement.rstrip(";"))
