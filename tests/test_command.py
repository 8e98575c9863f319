"""manage.py byhand sql: bad input, nothing to do, manual steps, read-only generation."""

from __future__ import annotations

import gc
import glob
import io
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import django
import pytest
from django.core import checks
from django.core.management import BaseCommand, CommandError, call_command
from django.db import DatabaseError, connections
from django.test import override_settings

from byhand.exceptions import UnsupportedVendor
from byhand.management.commands.byhand import Command
from byhand.planning import compiling, plans
from byhand.planning.plans import find_migration
from byhand.planning.states import UNFROZEN_COUNT
from byhand.runbook import parse_runbook
from byhand.vendors import get_vendor
from support import ROOT, VENDOR, admin_connection, fresh_database, recorded_rows, use_database

EXAMPLE = ROOT / "example"


@pytest.fixture
def empty_db() -> Iterator[dict[str, Any]]:
    with fresh_database("default") as settings, use_database("default", settings):
        yield settings


def sql(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("byhand", "sql", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def error_of(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        sql(*args)
    return str(caught.value)


@pytest.mark.needs_server
def test_unknown_app_label(empty_db: dict[str, Any]) -> None:
    """An unknown label is named, with the hint to use labels."""
    assert (
        error_of("nope")
        == "No installed app with label 'nope'. Use the app's label (AppConfig.label), as migrate does."
    )


@pytest.mark.needs_server
def test_app_without_migrations(empty_db: dict[str, Any]) -> None:
    """An installed app without a migrations package is refused."""
    assert error_of("byhand") == "app 'byhand' does not have migrations."


@pytest.mark.needs_server
def test_unknown_migration(empty_db: dict[str, Any]) -> None:
    """A name no migration starts with."""
    assert error_of("shop", "0099") == "cannot find a migration matching '0099' in app 'shop'."


@pytest.mark.needs_server
def test_ambiguous_prefix_lists_the_candidates(empty_db: dict[str, Any]) -> None:
    """'0001' matches the squash and the first replaced migration."""
    assert error_of("catalog", "0001") == (
        "more than one migration matches '0001' in app 'catalog': 0001_initial, "
        "0001_squashed_0003_alter_category_slug. Give more of the name."
    )


def test_exact_name_wins_over_a_longer_name_it_prefixes() -> None:
    """'0002_foo' is exact although '0002_foo_bar' starts with it (Django finds it ambiguous)."""

    class Loader:
        disk_migrations: ClassVar[dict[tuple[str, str], None]] = {("a", "0002_foo"): None, ("a", "0002_foo_bar"): None}

    assert find_migration(Loader(), "a", "0002_foo") == ("a", "0002_foo")  # type: ignore[arg-type]
    assert find_migration(Loader(), "a", "0002_foo_b") == ("a", "0002_foo_bar")  # type: ignore[arg-type]


def test_unsupported_vendor() -> None:
    """Oracle (or anything else) is refused by name."""
    with pytest.raises(UnsupportedVendor, match="database vendor 'oracle' is not supported"):
        get_vendor("oracle")


@pytest.mark.needs_server
def test_unknown_database_alias(empty_db: dict[str, Any]) -> None:
    """An alias that is not in DATABASES."""
    assert error_of("--database", "nope") == "unknown database alias 'nope'; settings.DATABASES has default, archive."


@pytest.mark.needs_server
def test_inconsistent_history_is_refused(empty_db: dict[str, Any], tmp_path: Path) -> None:
    """shop.0002 recorded without shop.0001: refuse, write nothing."""
    call_command("migrate", "contenttypes", database="default", verbosity=0)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0002_book_index_together', %s)",
            ["2026-01-01 00:00:00"],
        )
    output = tmp_path / "runbook.sql"
    message = error_of("-o", str(output))
    assert message.startswith(
        "Migration shop.0002_book_index_together is applied before its dependency shop.0001_initial"
    )
    assert not output.exists()


@pytest.mark.needs_server
def test_conflicting_leaves_are_refused(empty_db: dict[str, Any]) -> None:
    """Two leaves in one app: merge first."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.conflict"}):
        assert error_of() == (
            "conflicting migrations, several leaf nodes in the graph: (0002_a, 0002_b in catalog). "
            "Run 'manage.py makemigrations --merge' first."
        )


def test_unreachable_database(tmp_path: Path) -> None:
    """A server that does not answer: one line saying so, before any planning (issue 16, item 12)."""
    settings = dict(connections["default"].settings_dict)
    if VENDOR == "sqlite":
        settings["NAME"] = str(tmp_path / "missing-dir" / "db.sqlite3")
    else:
        settings.update(HOST="127.0.0.1", PORT="1")
    with use_database("default", settings):
        message = error_of()
    assert message.startswith("cannot connect to database 'default': ")
    assert message.endswith("(nothing was changed).")
    assert "\n" not in message


@pytest.mark.needs_server
def test_manual_steps_are_listed_and_nothing_is_written(empty_db: dict[str, Any], tmp_path: Path) -> None:
    """Without --manual-steps the RunPython operations are listed and no file appears."""
    call_command("migrate", "contenttypes", database="default", verbosity=0)  # else no rename is injected
    output = tmp_path / "runbook.sql"
    message = error_of("shop", "-o", str(output))
    assert message == (
        "the plan holds 3 Python operation(s) that cannot be written as SQL:\n"
        "  shop.0005_rename_publisher operation 0: django.contrib.contenttypes: rename content type "
        "shop.publisher to shop.imprint\n"
        "  shop.0007_sql_and_python operation 3: shop.migrations.0007_sql_and_python.add_first_author\n"
        "  shop.0007_sql_and_python operation 4: shop.migrations.0007_sql_and_python.fill_pages\n"
        "Rerun with --manual-steps to write them into the runbook as manual steps for the operator "
        "(nothing was written)."
    )
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.needs_server
def test_nothing_to_do_exits_cleanly(empty_db: dict[str, Any], tmp_path: Path) -> None:
    """A migrated database: a message, no file."""
    call_command("migrate", database="default", verbosity=0)
    output = tmp_path / "runbook.sql"
    out, err = sql("-o", str(output))
    assert (out, err) == ("", "No migrations to apply on 'default': nothing to write.\n")
    assert not output.exists()


@pytest.mark.needs_server
def test_nothing_to_do_leaves_no_scratch_copy_behind(empty_db: dict[str, Any]) -> None:
    """The copy is started before the plan is known: unused, it is dropped all the same."""
    call_command("migrate", database="default", verbosity=0)
    assert sql() == ("", "No migrations to apply on 'default': nothing to write.\n")
    assert scratch_databases() == []


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite's copy is a file made on first use")
@pytest.mark.needs_server
def test_the_scratch_copy_is_made_while_the_migrations_load(
    empty_db: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server makes the copy while the plan is computed, not after."""
    seen: list[list[str]] = []
    pending_plan = plans.pending_plan

    def plan_watched(**kwargs: Any) -> plans.Plan:
        seen.append(scratch_databases_soon())
        return pending_plan(**kwargs)

    monkeypatch.setattr(plans, "pending_plan", plan_watched)
    out, _ = sql("shop", "--manual-steps")
    assert len(seen) == 1 and len(seen[0]) == 1, seen
    assert "shop.0001_initial" in out
    assert scratch_databases() == []


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite's copy is a file made on first use")
@pytest.mark.needs_server
def test_interrupted_mid_query_while_planning_still_drops_the_scratch_copy(
    empty_db: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM can land between a query and the reading of its result, or in a
    transaction a failed query spoiled: the target's connection is then unusable, so the
    scratch copy is dropped on a connection of its own."""

    def interrupted(**kwargs: Any) -> plans.Plan:
        assert scratch_databases_soon()
        connection = connections["default"]
        connection.ensure_connection()
        if VENDOR == "postgresql":
            connection.set_autocommit(False)
            with pytest.raises(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT 1/0")
        else:
            connection.connection.query("SELECT 1")  # its result never read: "commands out of sync"
        raise KeyboardInterrupt

    monkeypatch.setattr(plans, "pending_plan", interrupted)
    try:
        message = error_of("--manual-steps")
        assert message == "interrupted (Ctrl-C); no scratch copy is left behind, nothing was written."
    finally:
        connections["default"].close()
    assert scratch_databases() == []


@pytest.mark.skipif(VENDOR != "postgresql", reason="a role without CREATEDB is PostgreSQL's")
@pytest.mark.needs_server
def test_nothing_to_do_needs_no_scratch_copy(empty_db: dict[str, Any]) -> None:
    """A role that may not create databases: the failed early copy is not an error
    when there is nothing to rehearse."""
    call_command("migrate", database="default", verbosity=0)
    role = f"byhand_nocreate_{empty_db['NAME'][-8:]}"
    with connections["default"].cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
        cursor.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        with use_database("default", {**empty_db, "USER": role}):
            assert sql() == ("", "No migrations to apply on 'default': nothing to write.\n")
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


@pytest.mark.needs_server
def test_only_the_command_line_leaves_the_rehearsals_garbage_to_the_end_of_the_process(
    empty_db: dict[str, Any], tmp_path: Path
) -> None:
    """run_from_argv, the command line's way in, freezes what is left when it returns, so
    that the interpreter does not collect it on its way out; call_command, used by
    processes that go on, leaves the collector alone."""
    gc.unfreeze()
    try:
        sql("shop", "--manual-steps")
        assert gc.get_freeze_count() <= UNFROZEN_COUNT
        output = tmp_path / "runbook.sql"
        Command().run_from_argv(["manage.py", "byhand", "sql", "shop", "--manual-steps", "-o", str(output)])
        assert gc.get_freeze_count() > UNFROZEN_COUNT
        assert "shop.0001_initial" in output.read_text()
    finally:
        gc.unfreeze()


@pytest.mark.needs_server
def test_system_checks_look_at_the_chosen_database_only(empty_db: dict[str, Any]) -> None:
    """As migrate: the checks get only --database. Django 6.1 otherwise gives them every alias,
    and MySQL's field checks then connect to each (an unreachable alias fails the command)."""
    seen: list[Any] = []

    def spy(app_configs: Any, databases: Any = None, **kwargs: Any) -> list[Any]:
        seen.append(databases)
        return []

    registry = checks.registry.registry
    registry.register(spy)
    try:
        with pytest.raises(CommandError, match="'nope'"):
            call_command("byhand", "sql", "nope", "--database", "default", skip_checks=False)
    finally:
        registry.registered_checks.discard(spy)
    # Django 4.2 has no get_check_kwargs: no database is checked there.
    assert seen == ([["default"]] if hasattr(BaseCommand, "get_check_kwargs") else [None])


@pytest.mark.needs_server
def test_irreversible_backwards_plan_names_the_operations(empty_db: dict[str, Any]) -> None:
    """A RunSQL without reverse_sql cannot be unapplied."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.irreversible"}):
        call_command("migrate", "catalog", database="default", verbosity=0)
        assert error_of("catalog", "zero") == (
            "the backwards plan holds 1 irreversible operation(s):\n"
            "  catalog.0002_drop_name operation 0: Raw SQL operation\n"
            "Choose a target after them, or give them a reverse_code / reverse_sql."
        )


@pytest.mark.needs_server
def test_python_ddl_is_shown_as_information_only(empty_db: dict[str, Any]) -> None:
    """What a RunPython executed while rehearsing is commented under its manual step."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.python_ddl"}):
        out, _ = sql("catalog", "--manual-steps")
    runbook = parse_runbook(out)
    block = runbook.migrations[-1]
    assert block.migration == "catalog.0002_view"
    assert [s.kind for s in block.steps] == ["manual", "record"]
    assert block.steps[0].callable == "scenarios.python_ddl.0002_view.create_view"
    assert "\n--   CREATE VIEW catalog_names AS SELECT name FROM catalog_category\n" in out


@pytest.mark.needs_server
def test_single_migration_needs_its_dependencies(empty_db: dict[str, Any]) -> None:
    """--migration refuses to print SQL for a schema the database does not have."""
    assert error_of("--migration", "shop", "0002") == (
        "shop.0002_book_index_together depends on unapplied shop.0001_initial; "
        "use 'byhand sql shop 0002_book_index_together' to include them."
    )
    call_command("migrate", "reviews", database="default", verbosity=0)  # and shop.0001
    out, _ = sql("--migration", "shop", "0002")
    assert [b.migration for b in parse_runbook(out).migrations] == ["shop.0002_book_index_together"]
    assert error_of("--migration", "shop", "0001", "--backwards") == (
        "applied migrations depend on shop.0001_initial: reviews.0001_initial; "
        "use 'byhand sql shop <earlier migration>' to unapply them too."
    )


@pytest.mark.needs_server
def test_generation_only_reads_the_target(empty_db: dict[str, Any]) -> None:
    """Every statement byhand sends to the target while generating is a read."""
    call_command("migrate", "shop", "0004", database="default", verbosity=0)
    target = connections["default"]
    target.ensure_connection()
    sent: list[str] = []

    def spy(execute: Any, query: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(query)
        return execute(query, params, many, context)

    with target.execute_wrapper(spy):
        out, _ = sql("--manual-steps")
    assert len(parse_runbook(out).migrations) > 10
    assert sent, "the target was never read"
    reads = re.compile(r"\s*(SELECT|SHOW|PRAGMA (?!.*=)|WITH)\b", re.I)
    # The scratch copy is created and dropped on the target's server, not in its database.
    scratch = re.compile(r'(CREATE|DROP) DATABASE (IF EXISTS )?["`]byhand_scratch_\d+_[0-9a-f]{8}["`]')
    writes = [q for q in sent if not reads.match(q) and not scratch.match(q)]
    assert writes == []
    assert ("shop", "0005_rename_publisher") not in recorded_rows("default")


@pytest.mark.skipif(
    VENDOR != "postgresql" or django.VERSION < (5, 1), reason="Django pools connections on PostgreSQL from 5.1"
)
@pytest.mark.needs_server
def test_a_pooled_alias_is_rehearsed_on_the_scratch_copy_not_on_the_target(empty_db: dict[str, Any]) -> None:
    """Django keeps its PostgreSQL pools per alias (OPTIONS pool): the connections byhand
    makes under the target's alias, for a scratch database (sql's copy, verify's migrated
    one), must not come from the target's pool."""
    call_command("migrate", "shop", "0004", database="default", verbosity=0)
    original = connections["default"]
    pooled = original.__class__({**empty_db, "OPTIONS": {**empty_db.get("OPTIONS", {}), "pool": True}}, "default")
    connections["default"] = pooled
    try:
        pooled.ensure_connection()  # the alias's pool exists, full of connections to the target
        before = schema_of(pooled)
        out, _ = sql("--manual-steps")
        after_sql = schema_of(pooled)
        verified = io.StringIO()
        call_command("byhand", "verify", "--database", "default", stdout=verified)  # migrates a scratch database
        after = schema_of(pooled)
    finally:
        pooled.close()
        pooled.close_pool()
        connections["default"] = original
    names = [block.migration for block in parse_runbook(out).migrations]
    assert "shop.0005_rename_publisher" in names
    assert after_sql == before and after == before
    assert "no drift" in verified.getvalue().lower(), verified.getvalue()
    assert ("shop", "0005_rename_publisher") not in recorded_rows("default")


def schema_of(connection: Any) -> dict[str, list[str]]:
    """Each table's columns, as introspection sees them."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        return {t: [c.name for c in connection.introspection.get_table_description(cursor, t)] for t in tables}


@pytest.mark.skipif(VENDOR != "postgresql", reason="uses PostgreSQL's default_transaction_read_only role setting")
@pytest.mark.needs_server
def test_a_read_only_role_generates_with_a_scratch_server(empty_db: dict[str, Any]) -> None:
    """A role that can only read the target: refused alone, works with --scratch-database."""
    call_command("migrate", "shop", "0004", database="default", verbosity=0)
    role = f"byhand_ro_{empty_db['NAME'][-8:]}"
    with connections["default"].cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN')
        cursor.execute(f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
        cursor.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        with use_database("default", {**empty_db, "USER": role}):
            message = error_of("--manual-steps")
            assert message.startswith("could not create the scratch database 'byhand_scratch_")
            assert message.endswith(
                "grant CREATEDB to this role, or name another alias of the same server version with --scratch-database."
            )
            server = {**connections["archive"].settings_dict, "NAME": "postgres"}
            with use_database("archive", server):
                out, _ = sql("--manual-steps", "--scratch-database", "archive")
        names = [block.migration for block in parse_runbook(out).migrations]
        assert "contenttypes.0001_initial" in names and "shop.0005_rename_publisher" in names
        assert ("shop", "0005_rename_publisher") not in recorded_rows("default")
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


@pytest.mark.needs_server
def test_unwritable_output_is_refused_before_any_work(empty_db: dict[str, Any], tmp_path: Path) -> None:
    """A folder that does not exist: said at once."""
    output = tmp_path / "missing" / "runbook.sql"
    assert error_of("-o", str(output)) == f"cannot write {output}: its folder {output.parent} does not exist."


@pytest.mark.parametrize("prefix", ["9scratch_", "scratch-", "", "x" * 41, "scratch_\n"])
def test_a_scratch_prefix_that_cannot_start_a_database_name_is_refused(prefix: str) -> None:
    """--scratch-prefix, and the setting, are refused before any work unless they can start
    a database name (issue 16, item 18); the option wins over the setting."""
    rule = "give 1 to 40 letters, digits and underscores, not starting with a digit"
    assert rule in error_of("--scratch-prefix", prefix)
    assert error_of("--scratch-prefix", prefix).startswith(f"--scratch-prefix {prefix!r} cannot start")
    with override_settings(BYHAND_SCRATCH_PREFIX=prefix):
        assert error_of().startswith(f"settings.BYHAND_SCRATCH_PREFIX {prefix!r} cannot start")
    with override_settings(BYHAND_SCRATCH_PREFIX=["not", "a", "string"]):
        assert error_of().startswith("settings.BYHAND_SCRATCH_PREFIX ['not', 'a', 'string'] cannot start")


@pytest.mark.needs_server
def test_unknown_scratch_alias(empty_db: dict[str, Any]) -> None:
    """--scratch-database names an alias that is not configured."""
    assert error_of("--scratch-database", "elsewhere") == (
        "unknown scratch database alias 'elsewhere'; settings.DATABASES has default, archive."
    )


@pytest.mark.needs_server
def test_no_scratch_database_left_behind_after_a_failed_rehearsal(empty_db: dict[str, Any]) -> None:
    """A migration that fails on the scratch copy: an error, and the copy is dropped."""
    with connections["default"].cursor() as cursor:  # shop.0001 will collide with this table
        cursor.execute("CREATE TABLE shop_author (id integer PRIMARY KEY)")
    message = error_of("shop", "--manual-steps")
    assert message.startswith("shop.0001_initial failed on the scratch copy of the schema: ")
    assert "shop_author" in message
    assert message.endswith("its schema does not match what django_migrations records.")
    assert scratch_databases() == []


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite's scratch copy is made without a dump tool")
@pytest.mark.needs_server
def test_a_failed_dump_drops_the_scratch_database_created_meanwhile(
    empty_db: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema is dumped while the scratch database is created, and the dump's outcome
    is read once the database exists: when the dump fails, that database is dropped."""
    tool = tmp_path / {"postgresql": "pg_dump", "mysql": "mysqldump"}[VENDOR]
    tool.write_text("#!/bin/sh\necho 'dump refused by the test' >&2\nexit 1\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    message = error_of("--manual-steps")
    assert "dump refused by the test" in message
    assert scratch_databases() == []


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite's scratch copy is made without a dump tool")
@pytest.mark.needs_server
def test_with_nothing_to_do_a_slow_dump_is_stopped_not_waited_for(
    empty_db: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy starts before the plan is known. When there is nothing to do, or planning
    fails, the dump under way (long, for a big schema) is killed, not waited for, and
    nothing is left."""
    call_command("migrate", database="default", verbosity=0)
    started = tmp_path / "dump.pid"
    tool = tmp_path / {"postgresql": "pg_dump", "mysql": "mysqldump"}[VENDOR]
    tool.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 30\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    pending_plan = plans.pending_plan

    def plan_once_the_dump_runs(**kwargs: Any) -> plans.Plan:
        deadline = time.monotonic() + 10
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return pending_plan(**kwargs)

    monkeypatch.setattr(plans, "pending_plan", plan_once_the_dump_runs)
    begun = time.monotonic()
    assert sql() == ("", "No migrations to apply on 'default': nothing to write.\n")
    assert time.monotonic() - begun < 10
    assert scratch_databases() == []
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.read_text()), 0)
    started.unlink()  # and when planning fails, the same
    begun = time.monotonic()
    assert error_of("nope").startswith("No installed app with label 'nope'")
    assert time.monotonic() - begun < 10
    assert scratch_databases() == []
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.read_text()), 0)


def scratch_databases(pid: int | None = None, *, since: float = 0) -> list[str]:
    """A process's byhand_scratch_<pid>_* databases (or files) that still exist; SQLite's
    files only if made ``since`` (time.time()): one left by a process that had the same pid
    before is not this one's."""
    prefix = f"byhand_scratch_{pid or os.getpid()}_"
    if VENDOR == "sqlite":
        return [name for name in glob.glob(f"{tempfile.gettempdir()}/{prefix}*") if _made_since(name, since)]
    query = (
        f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%%'"
        if VENDOR == "postgresql"
        else f"SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '{prefix}%%'"
    )
    admin = admin_connection("default")
    try:
        with admin.cursor() as cursor:
            cursor.execute(query)
            return [row[0] for row in cursor.fetchall()]
    finally:
        admin.close()


def _made_since(path: str, since: float) -> bool:
    """Whether ``path`` still exists and was last written ``since`` (its journal comes and goes)."""
    try:
        return os.path.getmtime(path) >= since
    except FileNotFoundError:
        return False


def signalled_output(process: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum`` to ``process`` (started with PYTHONFAULTHANDLER=1) and return its
    standard error once it has ended; if it has not ended within a minute, fail with what
    each of its threads was doing (faulthandler's dump on SIGABRT)."""
    process.send_signal(signum)
    try:
        return process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        stderr = process.communicate()[1]
        pytest.fail(f"still running a minute after {signal.Signals(signum).name}; its threads:\n{stderr}")


def scratch_databases_soon(seconds: float = 10) -> list[str]:
    """This process's scratch copies, once one exists (or the time is up)."""
    deadline = time.monotonic() + seconds
    while not scratch_databases() and time.monotonic() < deadline:
        time.sleep(0.01)
    return scratch_databases()


@pytest.mark.needs_server
def test_sigterm_during_rehearsal_drops_the_scratch_copy() -> None:
    """Killed politely while rehearsing: exit 1, a message, no scratch database left."""
    with fresh_database("default") as database:
        base = os.environ.get("DATABASE_URL", "")
        url = f"{base.rsplit('/', 1)[0]}/{database['NAME']}" if base else f"sqlite:///{database['NAME']}"
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(EXAMPLE), "PYTHONFAULTHANDLER": "1"}
        command = [sys.executable, str(EXAMPLE / "manage.py"), "byhand", "sql", "--manual-steps"]
        started = time.time() - 1  # file times are coarser than the clock
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not scratch_databases(process.pid, since=started) and process.poll() is None:
            assert time.monotonic() < deadline, "the scratch copy never appeared"
            time.sleep(0.01)
        assert scratch_databases(process.pid, since=started), "the scratch copy never appeared"
        stderr = signalled_output(process, signal.SIGTERM)
    assert process.returncode == 1
    assert stderr.strip().endswith("interrupted (SIGTERM); no scratch copy is left behind, nothing was written."), (
        stderr
    )
    assert scratch_databases(process.pid, since=started) == []


@pytest.mark.skipif(VENDOR != "sqlite", reason="FTS5 virtual tables are SQLite's")
@pytest.mark.needs_server
def test_sqlite_virtual_tables_are_copied_without_their_shadow_tables(empty_db: dict[str, Any]) -> None:
    """An FTS5 table's shadow tables come back with it; copying them too would fail."""
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE VIRTUAL TABLE notes USING fts5(body)")
    out, _ = sql("catalog")
    assert [b.migration for b in parse_runbook(out).migrations][-1] == "catalog.0004_category_parent"


@pytest.mark.skipif(VENDOR != "sqlite", reason="Django's SQL functions are registered on SQLite connections")
@pytest.mark.needs_server
def test_sqlite_functional_indexes_are_copied_with_djangos_functions(empty_db: dict[str, Any]) -> None:
    """An index on ExtractYear calls django_datetime_extract; the copy must know it."""
    with connections["default"].cursor() as cursor:
        cursor.execute('CREATE TABLE "notes" ("created" datetime NOT NULL)')
        cursor.execute(
            'CREATE INDEX "notes_year" ON "notes" (django_datetime_extract(\'year\', "created", NULL, NULL))'
        )
    out, _ = sql("catalog")
    assert [b.migration for b in parse_runbook(out).migrations][-1] == "catalog.0004_category_parent"
    assert scratch_databases() == []


@pytest.mark.needs_server
@pytest.mark.parametrize(
    ("command", "signum"),
    [
        (("verify",), signal.SIGTERM),
        (("verify",), signal.SIGHUP),
        (("verify",), signal.SIGINT),
        (("record", "reviews", "0001", "--check"), signal.SIGTERM),
    ],
    ids=["verify-SIGTERM", "verify-SIGHUP", "verify-SIGINT", "record-check-SIGTERM"],
)
def test_a_signal_while_a_scratch_database_exists_drops_it(command: tuple[str, ...], signum: int) -> None:
    """Issue 22: verify and record --check make a scratch database; whatever signal ends them
    while it exists, it is dropped, and the command says it was interrupted."""
    with fresh_database("default") as database:
        with use_database("default", database):
            call_command("migrate", "shop", database="default", verbosity=0)
        base = os.environ.get("DATABASE_URL", "")
        url = f"{base.rsplit('/', 1)[0]}/{database['NAME']}" if base else f"sqlite:///{database['NAME']}"
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(EXAMPLE), "PYTHONFAULTHANDLER": "1"}
        arguments = [sys.executable, str(EXAMPLE / "manage.py"), "byhand", *command]
        # A background job (scripts/test.sh runs each lane with &) inherits SIGINT ignored, and
        # Python then keeps ignoring it, as an operator's `byhand ... &` should. A handled signal
        # is reset to its default at exec, which Python turns into KeyboardInterrupt.
        ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            process = subprocess.Popen(arguments, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        finally:
            signal.signal(signal.SIGINT, ignored)
        started = time.time() - 1  # file times are coarser than the clock
        deadline = time.monotonic() + 60
        while not scratch_databases(process.pid, since=started) and process.poll() is None:
            assert time.monotonic() < deadline, "the scratch database never appeared"
            time.sleep(0.01)
        assert scratch_databases(process.pid, since=started), "the scratch database never appeared"
        stderr = signalled_output(process, signum)
    assert f"interrupted ({signal.Signals(signum).name if signum != signal.SIGINT else 'Ctrl-C'})" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert scratch_databases(process.pid, since=started) == []


@pytest.mark.needs_server
def test_a_primary_key_type_change_is_said_once_up_front(empty_db: dict[str, Any]) -> None:
    """Issue 17, item 4: shop 0008 makes Author's key a BigAutoField (as a project that takes
    Django 6.0's DEFAULT_AUTO_FIELD does on every model): said on standard error and at the
    top of the runbook, with the tables whose columns follow it (server vendors alter them;
    SQLite remakes its tables anyway)."""
    out, err = sql("--manual-steps")
    change = "shop.0008_author_bigautofield: shop_author.id AutoField -> BigAutoField"
    top = out[: out.index('-- byhand: {"block"')]
    assert f"NOTE: {compiling.KEY_CHANGE_NOTE}" in err and f"\n  {change}" in err, err
    assert f"-- NOTE: {compiling.KEY_CHANGE_NOTE}:\n--   {change}" in top, top
    altered = "shop_author" if VENDOR == "sqlite" else "shop_book, reviews_review, shop_author"
    assert f"{change}: altered: {altered}\n" in top, top
    again, err = sql("shop", "0007", "--manual-steps")
    assert "NOTE" not in err and compiling.KEY_CHANGE_NOTE not in again


def test_output_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    """-o /dev/full, a FIFO: the rename that makes the write atomic would replace the device
    with a file (found by a break-it trial: /dev/full became a regular file). Refused first."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert (
        error_of("-o", str(fifo))
        == f"cannot write {fifo}: it is not a regular file (write to standard output instead)."
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.needs_server
def test_output_through_a_symbolic_link_writes_the_file_it_names(empty_db: dict[str, Any], tmp_path: Path) -> None:
    """-o LINK: the file the link names gets the runbook, the link stays a link."""
    real = tmp_path / "runbooks" / "real.sql"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.sql"
    link.symlink_to(real)
    sql("shop", "0001", "-o", str(link))
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().startswith("-- byhand runbook v1")
