"""Real databases for tests: fresh ones per test, the vendors' own CLIs, migrate with its SQL captured."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import RunPython

from byhand.applying import ApplyOptions, ApplyResult, apply_runbook, connect
from byhand.events import Event
from byhand.rehearsing import use_database
from byhand.runbook import parse_runbook, terminate
from byhand.vendors import get_target, get_vendor
from byhand.vendors.target import Target, parse_database_url

VENDOR = connections["default"].vendor
ROOT = Path(__file__).resolve().parent.parent


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
    return connections[alias].__class__(settings, f"{alias}_admin")


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
    name = f"byhand_test_{secrets.token_hex(4)}"
    quote = '"%s"' if VENDOR == "postgresql" else "`%s`"
    admin = admin_connection(alias)
    with admin.cursor() as cursor:
        cursor.execute("CREATE DATABASE " + quote % name)
    try:
        yield {**base, "NAME": name}
    finally:
        with admin.cursor() as cursor:
            force = " WITH (FORCE)" if VENDOR == "postgresql" else ""
            cursor.execute(f"DROP DATABASE IF EXISTS {quote % name}{force}")
        admin.close()


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
        for table in sorted(connection.introspection.table_names(cursor)):
            columns = [
                (c.name, c.type_code, c.null_ok, getattr(c, "default", None))
                for c in connection.introspection.get_table_description(cursor, table)
            ]
            constraints = connection.introspection.get_constraints(cursor, table)
            schema[table] = {"columns": columns, "constraints": constraints}
    return schema


def target_for(settings: dict[str, Any]) -> Target:
    target = get_target(parse_database_url(database_url(settings)))
    connect(target)
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


__all__ = [
    "ROOT",
    "VENDOR",
    "admin_connection",
    "apply",
    "capturing_migrate",
    "database_url",
    "fresh_database",
    "recorded_rows",
    "require_server",
    "run_with_cli",
    "schema_of",
    "target_for",
    "use_database",
]
