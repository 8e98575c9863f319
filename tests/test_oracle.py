"""The oracle: the runbook holds exactly the SQL migrate runs, and the vendor's CLI running it
builds the schema and django_migrations rows that migrate builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.test import override_settings

from byhand.runbook import Runbook, parse_runbook
from support import (
    apply,
    capturing_migrate,
    fresh_database,
    recorded_rows,
    require_server,
    run_with_cli,
    schema_of,
    use_database,
)

#: Unapplying app by app, dependents first, until every app is at zero.
BACKWARDS = ["reviews", "shop", "catalog", "archive", "auth", "contenttypes"]


#: A callable default (auth.0005 backwards: last_login default=timezone.now) is evaluated
#: when the SQL is made, so the runbook and migrate carry different instants; only those differ.
_INSTANT = re.compile(r"'\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?)?'")


def _timeless(sqls: list[str]) -> list[str]:
    return [_INSTANT.sub("'<now>'", sql) for sql in sqls]


def statements(runbook: Runbook) -> dict[str, list[str]]:
    return {
        block.migration: _timeless([s.sql for s in block.steps if s.kind == "schema"])
        for block in runbook.migrations
        if block.migration
    }


def write_runbook(alias: str, path: Path, *args: str) -> Runbook:
    call_command("byhand", "sql", *args, "--manual-steps", "--database", alias, "-o", str(path))
    return parse_runbook(path.read_text())


def step(alias: str, a: dict, b: dict, path: Path, *args: str, c: dict | None = None) -> None:
    """From the same start, migrate database A and run the runbook for B with the CLI (and
    for C with byhand apply); compare."""
    ContentType.objects.clear_cache()
    with use_database(alias, b):
        runbook = write_runbook(alias, path, *args)
    ContentType.objects.clear_cache()
    with use_database(alias, a):
        with capturing_migrate(alias) as executed:
            call_command("migrate", *args, database=alias, verbosity=0)
        schema_a, rows_a = schema_of(alias), recorded_rows(alias)
    with use_database(alias, b):
        run_with_cli(alias, b, path)
        schema_b, rows_b = schema_of(alias), recorded_rows(alias)
    assert statements(runbook) == {key: _timeless(sqls) for key, sqls in executed.items()}
    assert schema_b == schema_a
    assert rows_b == rows_a
    if c is not None:
        apply(path, c, skip_manual_steps=True)
        with use_database(alias, c):
            schema_c, rows_c = schema_of(alias), recorded_rows(alias)
        schema_c.pop("byhand_journal", None)
        assert schema_c == schema_b, "byhand apply built another schema than the CLI"
        assert rows_c == rows_b


@pytest.mark.parametrize("alias", ["default", "archive"])
def test_runbook_is_what_migrate_runs_forwards_then_backwards_to_zero(alias: str, tmp_path: Path) -> None:
    """Forwards to the leaves, then app by app to zero: same SQL, schema and rows as migrate."""
    require_server()
    with fresh_database(alias) as a, fresh_database(alias) as b, fresh_database(alias) as c:
        step(alias, a, b, tmp_path / "forwards.sql", c=c)
        for app in BACKWARDS:
            step(alias, a, b, tmp_path / f"{app}-zero.sql", app, "zero", c=c)
        with use_database(alias, a):
            assert recorded_rows(alias) == set()


def test_partial_plans_and_squash_bookkeeping(tmp_path: Path) -> None:
    """Up to a middle migration, then the rest; a backwards step to a named migration."""
    require_server()
    alias = "default"
    with fresh_database(alias) as a, fresh_database(alias) as b, fresh_database(alias) as c:
        step(alias, a, b, tmp_path / "shop-0004.sql", "shop", "0004", c=c)
        step(alias, a, b, tmp_path / "catalog.sql", "catalog", c=c)
        step(alias, a, b, tmp_path / "rest.sql", c=c)
        step(alias, a, b, tmp_path / "shop-back-0005.sql", "shop", "0005_rename_publisher", c=c)
        with use_database(alias, b):
            assert ("catalog", "0001_squashed_0003_alter_category_slug") in recorded_rows(alias)


def test_a_statement_whose_failure_the_operation_caught_is_not_in_the_runbook(tmp_path: Path) -> None:
    """migrate changed nothing for it, so the runbook holds nothing for it (the CLI would stop)."""
    require_server()
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.tolerant"}):
        with fresh_database("default") as a, fresh_database("default") as b:
            step("default", a, b, tmp_path / "catalog.sql", "catalog")
            with use_database("default", b):
                runbook = parse_runbook((tmp_path / "catalog.sql").read_text())
    assert [s.sql for s in runbook.migrations[-1].steps if s.kind == "schema"] == []
