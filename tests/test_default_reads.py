"""A field default that read the target database when the runbook was written (pulpcore's
get_domain_pk()): apply reads it again at preflight, and refuses when it gives something else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from builders import postgresql_runbook
from byhand.operating.journal import MigrationProgress
from byhand.operating.preflight import BlockPlan
from byhand.operating.rereading import pending_reads
from byhand.runbook import Read, parse_runbook
from support import byhand, database_url, fresh_database, journal_rows, recorded_rows, use_database

QUERY = "SELECT id FROM catalog_domain WHERE name = 'default'"
MIGRATION = "catalog.0003_category_domain"
DEFAULT = "the default scenarios.reading_default.0003_category_domain.default_domain_pk() of category.domain"


def _runbook(database: dict[str, Any], path: Path) -> None:
    """``database`` at catalog 0002 (the 'default' domain renumbered 42, one category), and
    the runbook of catalog.0003, whose default reads that domain's id, written against it."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.reading_default"}):
        with use_database("default", database), connections["default"].cursor() as cursor:
            call_command("migrate", "catalog", "0002", database="default", verbosity=0)
            cursor.execute("UPDATE catalog_domain SET id = 42 WHERE name = 'default'")
            cursor.execute("INSERT INTO catalog_category (name) VALUES ('books')")
            call_command("byhand", "sql", "catalog", "-o", str(path))


def _execute(database: dict[str, Any], *statements: str) -> None:
    with use_database("default", database), connections["default"].cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def _untouched(database: dict[str, Any]) -> None:
    """Nothing of catalog.0003 ran: not recorded, no column; no run journaled."""
    with use_database("default", database), connections["default"].cursor() as cursor:
        introspection = connections["default"].introspection
        assert ("catalog", "0003_category_domain") not in recorded_rows("default")
        assert "domain_id" not in [c.name for c in introspection.get_table_description(cursor, "catalog_category")]
        assert "byhand_journal" not in introspection.table_names(cursor)


@pytest.mark.needs_server
def test_the_runbook_records_the_read_and_applies_where_it_gives_the_same(tmp_path: Path) -> None:
    """The read marker holds the query as executed and the rows it gave; apply, on the database
    it was written against, reads the same and lands: every category refers to domain 42."""
    path = tmp_path / "catalog.sql"
    with fresh_database("default") as database:
        _runbook(database, path)
        (block,) = parse_runbook(path.read_text()).migrations
        assert block.reads == [Read(query=QUERY, rows=[[42]], default=DEFAULT, op=0)]
        shown = byhand("inspect", str(path))
        assert f"      checks first (operation 0): {QUERY} gives [[42]]\n" in shown.stdout, shown.stdout
        done = byhand("apply", str(path), "--database-url", database_url(database))
        assert done.returncode == 0, done.stderr
        assert "1 query a field default ran when the runbook was written gives the same rows here" in done.stdout
        with use_database("default", database), connections["default"].cursor() as cursor:
            cursor.execute("SELECT domain_id FROM catalog_category")
            assert [tuple(row) for row in cursor.fetchall()] == [(42,)]


@pytest.mark.needs_server
def test_a_read_that_gives_another_row_now_refuses_the_run_before_any_change(tmp_path: Path) -> None:
    """The domain renumbered between sql and apply (as on another database): the DEFAULT 42 in
    the runbook would be wrong for every category. apply, and --dry-run, refuse (exit 2) naming
    the migration, the default, the query, then and now, and what to do; nothing changed."""
    path = tmp_path / "catalog.sql"
    with fresh_database("default") as database:
        _runbook(database, path)
        _execute(database, "UPDATE catalog_domain SET id = 43 WHERE name = 'default'")
        url = database_url(database)
        for dry_run in ((), ("--dry-run",)):
            refused = byhand("apply", str(path), "--database-url", url, *dry_run)
            assert refused.returncode == 2, refused.stderr
            assert (
                f"  {MIGRATION}: {DEFAULT} read {QUERY} when the runbook was written, which gave [[42]]; "
                "here it gives [[43]]\n"
            ) in refused.stderr, refused.stderr
            assert "Write the runbook again against this database (manage.py byhand sql)" in refused.stderr
            _untouched(database)


@pytest.mark.needs_server
def test_a_read_that_finds_no_row_or_fails_now_refuses_the_run(tmp_path: Path) -> None:
    """Another row made first, the 'default' domain gone: no row now; the table renamed: the
    query fails. Both refused the same way, nothing changed."""
    path = tmp_path / "catalog.sql"
    with fresh_database("default") as database:
        _runbook(database, path)
        url = database_url(database)
        _execute(database, "UPDATE catalog_domain SET name = 'other' WHERE name = 'default'")
        refused = byhand("apply", str(path), "--database-url", url)
        assert refused.returncode == 2, refused.stderr
        assert "which gave [[42]]; here it gives no row\n" in refused.stderr, refused.stderr
        _execute(database, "ALTER TABLE catalog_domain RENAME TO catalog_realm")
        failed = byhand("apply", str(path), "--database-url", url)
        assert failed.returncode == 2, failed.stderr
        assert "which gave [[42]]; here it fails now: " in failed.stderr, failed.stderr
        assert "catalog_domain" in failed.stderr.split("here it fails now: ")[1], failed.stderr
        _untouched(database)


@pytest.mark.needs_server
def test_a_runbook_without_read_markers_still_applies(tmp_path: Path) -> None:
    """A runbook of an earlier byhand (the marker taken out and the edit re-signed) parses and
    applies as before: nothing to read again, the value in its SQL is used."""
    path = tmp_path / "catalog.sql"
    with fresh_database("default") as database:
        _runbook(database, path)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if not line.startswith('-- byhand: {"read"')))
        assert byhand("sign", str(path)).returncode == 0
        assert parse_runbook(path.read_text()).migrations[0].reads == []
        done = byhand("apply", str(path), "--database-url", database_url(database))
        assert done.returncode == 0, done.stderr
        assert "the same rows here" not in done.stdout
        assert [row[:2] for row in journal_rows(database)][-1] == ("run-finished", "done")
        with use_database("default", database):
            assert ("catalog", "0003_category_domain") in recorded_rows("default")


def test_reads_are_checked_for_blocks_that_will_run_and_statements_not_yet_committed() -> None:
    """A skipped block's reads are not run again, nor those of an operation whose statements a
    resumed run committed (the value is in the database then); the others are."""
    block = postgresql_runbook().blocks[0]
    first, second = Read(QUERY, [[42]], DEFAULT, op=0), Read(QUERY, [[7]], DEFAULT, op=1)
    block.items[5:5] = [first, second]
    assert pending_reads([BlockPlan(block, "skip", "already recorded")]) == []
    fresh = BlockPlan(block, "run", "not recorded")
    assert pending_reads([fresh]) == [(fresh, first), (fresh, second)]
    resumed = BlockPlan(block, "run", "not recorded", progress=MigrationProgress(done={1}))
    assert pending_reads([resumed]) == [(resumed, second)]
