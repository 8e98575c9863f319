"""The oracle: the runbook holds exactly the SQL migrate runs, and the vendor's CLI running it
builds the schema and django_migrations rows that migrate builds."""

from __future__ import annotations

import io
from pathlib import Path

import django
import pytest
from django.core.management import CommandError, call_command
from django.db import connections, models
from django.test import override_settings

from byhand.runbook import Step, parse_runbook
from support import VENDOR, fresh_database, oracle_step, recorded_rows, use_database

#: Unapplying app by app, dependents first, until every app is at zero.
BACKWARDS = ["reviews", "shop", "catalog", "archive", "auth", "contenttypes"]


@pytest.mark.parametrize("alias", ["default", "archive"])
@pytest.mark.needs_server
def test_runbook_is_what_migrate_runs_forwards_then_backwards_to_zero(alias: str, tmp_path: Path) -> None:
    """Forwards to the leaves, then app by app to zero: same SQL, schema and rows as migrate."""
    with fresh_database(alias) as a, fresh_database(alias) as b, fresh_database(alias) as c:
        oracle_step(alias, a, b, tmp_path / "forwards.sql", c=c)
        for app in BACKWARDS:
            oracle_step(alias, a, b, tmp_path / f"{app}-zero.sql", app, "zero", c=c)
        with use_database(alias, a):
            assert recorded_rows(alias) == set()


@pytest.mark.needs_server
def test_partial_plans_and_squash_bookkeeping(tmp_path: Path) -> None:
    """Up to a middle migration, then the rest; a backwards step to a named migration."""
    alias = "default"
    with fresh_database(alias) as a, fresh_database(alias) as b, fresh_database(alias) as c:
        oracle_step(alias, a, b, tmp_path / "shop-0004.sql", "shop", "0004", c=c)
        oracle_step(alias, a, b, tmp_path / "catalog.sql", "catalog", c=c)
        oracle_step(alias, a, b, tmp_path / "rest.sql", c=c)
        oracle_step(alias, a, b, tmp_path / "shop-back-0005.sql", "shop", "0005_rename_publisher", c=c)
        with use_database(alias, b):
            assert ("catalog", "0001_squashed_0003_alter_category_slug") in recorded_rows(alias)


@pytest.mark.needs_server
def test_a_statement_whose_failure_the_operation_caught_is_not_in_the_runbook(tmp_path: Path) -> None:
    """migrate changed nothing for it, so the runbook holds nothing for it (the CLI would stop)."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.tolerant"}):
        with fresh_database("default") as a, fresh_database("default") as b:
            oracle_step("default", a, b, tmp_path / "catalog.sql", "catalog")
            with use_database("default", b):
                runbook = parse_runbook((tmp_path / "catalog.sql").read_text())
    assert [s.sql for s in runbook.migrations[-1].steps if s.kind == "schema"] == []


@pytest.mark.needs_server
def test_database_level_on_delete_is_what_migrate_runs(tmp_path: Path) -> None:
    """Django 6.1's DB_CASCADE, DB_SET_NULL (and DB_SET_DEFAULT where the vendor has it):
    ON DELETE in CREATE TABLE, in an added column's FK and in FKs made again by AlterField;
    forwards, then back to zero."""
    if not hasattr(models, "DB_CASCADE"):
        pytest.skip("database-level on_delete is Django 6.1's")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.db_on_delete"}):
        with fresh_database("default") as a, fresh_database("default") as b, fresh_database("default") as c:
            oracle_step("default", a, b, tmp_path / "catalog.sql", "catalog", c=c)
            runbook = (tmp_path / "catalog.sql").read_text()
            assert "ON DELETE CASCADE" in runbook and "ON DELETE SET NULL" in runbook
            oracle_step("default", a, b, tmp_path / "catalog-zero.sql", "catalog", "zero", c=c)


@pytest.mark.needs_server
def test_a_squash_of_a_squash_is_recorded_as_migrate_records_it(tmp_path: Path) -> None:
    """Django 6.0's nested squash: forwards from empty, the rows of the outer squash, the
    inner one and everything they replace; then back to zero; then the old migrations up to
    0003, the rest, and check_replacements' rows for squashes made after the fact."""
    if django.VERSION < (6, 0):
        pytest.skip("squashing a squash is Django 6.0's")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.nested_squash"}):
        with fresh_database("default") as a, fresh_database("default") as b, fresh_database("default") as c:
            oracle_step("default", a, b, tmp_path / "catalog.sql", "catalog", c=c)
            with use_database("default", b):
                assert ("catalog", "0002_category_slug") in recorded_rows("default")
            oracle_step("default", a, b, tmp_path / "catalog-zero.sql", "catalog", "zero", c=c)
            oracle_step("default", a, b, tmp_path / "catalog-0003.sql", "catalog", "0003_alter_category_slug", c=c)
            oracle_step("default", a, b, tmp_path / "catalog-rest.sql", "catalog", c=c)
            squashes = {
                ("catalog", "0001_squashed_0003_alter_category_slug"),
                ("catalog", "0001_squashed_0004_category_parent"),
            }
            # Applied before the squashes existed: check_replacements records both, the outer
            # one because everything the inner one replaces is recorded.
            for db in (a, b, c):
                with use_database("default", db), connections["default"].cursor() as cursor:
                    assert squashes <= recorded_rows("default")
                    cursor.execute("DELETE FROM django_migrations WHERE name LIKE %s", ["%squashed%"])
            oracle_step("default", a, b, tmp_path / "catalog-squashes.sql", "catalog", c=c)
            with use_database("default", b):
                assert squashes <= recorded_rows("default")


@pytest.mark.needs_server
def test_a_column_of_a_type_an_extension_made_in_the_same_plan(tmp_path: Path) -> None:
    """CREATE EXTENSION hstore, then an HStoreField with a default: the default is quoted
    with the adapters Django registers after the extension exists (pulpcore's 0098)."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("hstore is PostgreSQL's")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.hstore"}):
        with fresh_database("default") as a, fresh_database("default") as b, fresh_database("default") as c:
            oracle_step("default", a, b, tmp_path / "catalog.sql", "catalog", c=c)
            assert "DEFAULT ''::hstore" in (tmp_path / "catalog.sql").read_text()
            oracle_step("default", a, b, tmp_path / "catalog-zero.sql", "catalog", "zero", c=c)


def _domains_at_0002(*databases: dict) -> None:
    """Each database at catalog 0002 (its RunPython made the 'default' domain), that domain
    renumbered 42 (no fresh database would give it that key) and one category referring to
    nothing yet: ADD COLUMN ... NOT NULL DEFAULT fills it, and the foreign key checks it."""
    for database in databases:
        with use_database("default", database), connections["default"].cursor() as cursor:
            call_command("migrate", "catalog", "0002", database="default", verbosity=0)
            cursor.execute("UPDATE catalog_domain SET id = 42 WHERE name = 'default'")
            cursor.execute("INSERT INTO catalog_category (name) VALUES ('books')")


@pytest.mark.needs_server
def test_a_default_that_reads_the_database_is_read_from_the_target(tmp_path: Path) -> None:
    """Issue 18, item 3 (pulpcore's pulp_domain): a callable default that queries a row an
    earlier migration's RunPython made, on a target past that migration. The scratch copy
    holds no rows: the value comes from the target, read-only, and the runbook is migrate's
    SQL (DEFAULT 42), which the vendor's CLI and byhand apply run to migrate's schema."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.reading_default"}):
        with fresh_database("default") as a, fresh_database("default") as b, fresh_database("default") as c:
            _domains_at_0002(a, b, c)
            oracle_step("default", a, b, tmp_path / "catalog.sql", "catalog", c=c)
            runbook = (tmp_path / "catalog.sql").read_text()
            assert "42" in runbook
            assert "read the target database" in runbook
            assert runbook.count("(SELECT id FROM catalog_domain") == 1, runbook  # one NOTE
            assert runbook.count('-- byhand: {"read": "SELECT id FROM catalog_domain') == 1, runbook
            for database in (a, b, c):
                with use_database("default", database), connections["default"].cursor() as cursor:
                    cursor.execute("SELECT domain_id FROM catalog_category")
                    assert [tuple(row) for row in cursor.fetchall()] == [(42,)]
            with use_database("default", a):  # verify's scratch database runs the RunPython itself
                call_command("byhand", "verify", stdout=io.StringIO())


@pytest.mark.needs_server
def test_a_default_that_reads_rows_a_manual_step_of_the_plan_makes_is_refused(tmp_path: Path) -> None:
    """Issue 18, item 3, from empty: the row the default reads is made by a manual step of the
    same plan, so neither the scratch copy nor the target holds the value apply time will see.
    byhand sql refuses, naming the migration, the field and the query; nothing written."""
    message = _refused(tmp_path, "reading_default", "--manual-steps")
    assert "catalog.0003_category_domain" in message
    assert "category.domain" in message
    assert "SELECT id FROM catalog_domain" in message
    assert "catalog.0002_default_domain" in message
    assert "--defaults-from-rehearsal" in message


@pytest.mark.needs_server
def test_defaults_from_rehearsal_writes_the_scratch_copy_s_value_with_a_warning(tmp_path: Path) -> None:
    """Issue 18, item 3: --defaults-from-rehearsal, the operator's choice when the step makes
    the same value everywhere: the value the manual step made on the scratch copy, and a
    WARNING naming the query and the step under the statement."""
    path = tmp_path / "catalog.sql"
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.reading_default"}):
        with fresh_database("default") as database, use_database("default", database):
            call_command("migrate", "catalog", "0001", database="default", verbosity=0)
            call_command("byhand", "sql", "catalog", "--manual-steps", "--defaults-from-rehearsal", "-o", str(path))
    runbook = path.read_text()
    warning = runbook[runbook.index("-- WARNING: the default") :]
    assert "SELECT id FROM catalog_domain" in warning.splitlines()[0]
    assert "after the manual step catalog.0002_default_domain:0" in warning.splitlines()[0]
    assert "read the target database" not in runbook
    assert '{"read": ' not in runbook  # the scratch copy's value: apply has nothing to read again


@pytest.mark.needs_server
def test_a_default_that_reads_rows_runsql_of_the_plan_writes_is_refused(tmp_path: Path) -> None:
    """Issue 18, item 3: the row comes from a RunSQL earlier in the plan, which names the table
    the default reads: the target does not hold it yet, and the scratch copy's key is not the
    one the target will give it. Refused, naming the RunSQL; a plan that starts after it reads
    the target (the previous test)."""
    message = _refused(tmp_path, "reading_default_sql")
    assert "catalog.0002_default_domain_sql operation 0 (RunSQL)" in message
    assert "SELECT id FROM catalog_domain" in message


@pytest.mark.needs_server
def test_a_refused_default_names_every_step_that_may_change_what_it_reads(tmp_path: Path) -> None:
    """Issue 18, item 3, as pulpcore's 0101 has it: a RunSQL naming the table, then the
    RunPython that makes the row, in one migration. The refusal named only the first (the
    RunSQL), sending the operator to the wrong step; it names both."""
    message = _refused(tmp_path, "reading_default_two_steps", "--manual-steps")
    assert (
        "and catalog.0002_default_domain operation 0 (RunSQL) and the manual step catalog.0002_default_domain:1 "
        "(scenarios.reading_default.0002_default_domain.create_default_domain), earlier in this plan, may change"
    ) in message, message


def _refused(tmp_path: Path, scenario: str, *options: str) -> str:
    """byhand sql's refusal for the catalog app of ``scenario`` past its 0001, which
    migrate made; nothing written."""
    path = tmp_path / "catalog.sql"
    with override_settings(MIGRATION_MODULES={"catalog": f"scenarios.{scenario}"}):
        with fresh_database("default") as database, use_database("default", database):
            call_command("migrate", "catalog", "0001", database="default", verbosity=0)
            with pytest.raises(CommandError) as caught:
                call_command("byhand", "sql", "catalog", *options, "-o", str(path))
    assert not path.exists()
    return str(caught.value)


@pytest.mark.needs_server
def test_an_online_runbook_builds_what_migrate_builds(tmp_path: Path) -> None:
    """--online: from the example half-way, forwards to the leaves, then app by app to zero:
    Django's statements kept beside their forms, and the same schema (PostgreSQL: every
    constraint validated, every index valid) and rows as migrate, by the vendor's client
    (psql, mariadb) and by byhand apply. MySQL/MariaDB's form: the algorithm in the statement."""
    if VENDOR == "sqlite":
        pytest.skip("online forms are PostgreSQL's and MySQL/MariaDB's")
    alias, online = "default", ("--online",)
    with fresh_database(alias) as a, fresh_database(alias) as b, fresh_database(alias) as c:
        oracle_step(alias, a, b, tmp_path / "start.sql", "shop", "0003", c=c)
        oracle_step(alias, a, b, tmp_path / "forwards.sql", c=c, sql_options=online)
        forms = [step.online["form"] for step in _steps(tmp_path / "forwards.sql") if step.online]
        expected = {"index", "unique", "foreign-key", "check"} if VENDOR == "postgresql" else {"algorithm", "copy"}
        assert expected <= set(forms)
        if VENDOR == "mysql":  # shop.0005 drops a key of shop_book: 0004's copies of it stay as Django wrote them
            assert (
                "-- online: left as Django wrote it: a later statement drops a foreign key of shop_book"
                in (tmp_path / "forwards.sql").read_text()
            )
        for app in BACKWARDS:
            oracle_step(alias, a, b, tmp_path / f"{app}-zero.sql", app, "zero", c=c, sql_options=online)


def _steps(path: Path) -> list[Step]:
    return [step for block in parse_runbook(path.read_text()).blocks for step in block.steps]


@pytest.mark.needs_server
def test_every_online_form_on_tables_with_rows(tmp_path: Path) -> None:
    """Index, unique (NULLS NOT DISTINCT too), check, foreign key and SET NOT NULL, each in its
    online form on a table with rows: migrate's schema, forwards and back to zero. MariaDB:
    the algorithms in the statements, and what needs a copy (a CHECK, a foreign key) through
    pt-online-schema-change, its keys' names as migrate's."""
    if VENDOR == "sqlite":
        pytest.skip("online forms are PostgreSQL's and MySQL/MariaDB's")
    online = ("--online",)
    scenario = "scenarios.online" if VENDOR == "postgresql" else "scenarios.online_copy"
    with override_settings(MIGRATION_MODULES={"catalog": scenario}):
        with fresh_database("default") as a, fresh_database("default") as b, fresh_database("default") as c:
            oracle_step("default", a, b, tmp_path / "0001.sql", "catalog", "0001", c=c)
            oracle_step("default", a, b, tmp_path / "0002.sql", "catalog", c=c, sql_options=online)
            forms = [step.online["form"] for step in _steps(tmp_path / "0002.sql") if step.online]
            if VENDOR == "postgresql":
                assert sorted(set(forms)) == ["check", "foreign-key", "index", "not-null", "unique"]
            else:
                assert sorted(set(forms)) == ["algorithm", "copy"]
            oracle_step("default", a, b, tmp_path / "zero.sql", "catalog", "zero", c=c, sql_options=online)
