"""What the rehearsal saw each statement do on the scratch copy (vendors/observing.py): the
text rules, then the example project's runbook on each vendor, as the server reported it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from byhand.runbook import Runbook, Step, observed_comment
from byhand.vendors.observing import own_clauses, reads_every_row, tables_named
from support import VENDOR, fresh_database, use_database, write_runbook


@pytest.mark.parametrize(
    ("sql", "tables", "scan"),
    [
        ('ALTER TABLE "a" ADD COLUMN "b" integer NULL', ["a"], False),
        ('CREATE TABLE "x" ("id" bigint, "f" int REFERENCES "y" ("id"))', ["y"], False),
        ('CREATE INDEX "i" ON "t" ("c")', ["t"], True),
        ('CREATE INDEX CONCURRENTLY "i" ON "t" ("c")', ["t"], True),
        ("ALTER TABLE `t` RENAME TO `u`", ["t"], False),
        ("RENAME TABLE `t` TO `u`", ["t"], False),
        ('ALTER TABLE "a" ADD CONSTRAINT "f" FOREIGN KEY ("b") REFERENCES "c" ("id") DEFERRABLE', ["a", "c"], True),
        ('ALTER TABLE "a" ADD CONSTRAINT "f" FOREIGN KEY ("b") REFERENCES "c" ("id") NOT VALID', ["a", "c"], False),
        ('ALTER TABLE "a" VALIDATE CONSTRAINT "f"', ["a"], True),
        ('ALTER TABLE "a" ALTER COLUMN "b" SET NOT NULL', ["a"], True),
        ('ALTER TABLE "a" ALTER COLUMN "b" DROP NOT NULL', ["a"], False),
        ('ALTER TABLE "a" ADD COLUMN "b" varchar(9) DEFAULT \'SET NOT NULL\' NOT NULL', ["a"], False),
        ('ALTER TABLE "a" ADD COLUMN "u" varchar(3) NOT NULL UNIQUE', ["a"], True),
        ('UPDATE "a" SET "b" = 1 WHERE "b" IS NULL', ["a"], True),
        # PostgreSQL checks no row for a foreign key on a column the statement adds empty (measured).
        ('ALTER TABLE "a" ADD COLUMN "c_id" bigint NULL CONSTRAINT "f" REFERENCES "c" ("id")', ["a", "c"], False),
        ('ALTER TABLE "a" ADD COLUMN "c_id" bigint DEFAULT 1 NOT NULL CONSTRAINT "f" REFERENCES "c"', ["a", "c"], True),
        ('INSERT INTO "new__a" ("id") SELECT "id" FROM "a"', ["new__a", "a"], True),
    ],
)
def test_what_a_statement_s_text_says(sql: str, tables: list[str], scan: bool) -> None:
    """The tables it acts on that existed before it, and whether it reads every row."""
    assert (tables_named(sql), reads_every_row(sql)) == (tables, scan)


def test_the_algorithm_and_lock_a_statement_asks_for() -> None:
    """MariaDB/MySQL: what its text asks for, not what a literal or a comment says, but what
    an executable comment says."""
    sql = "ALTER TABLE `t` ADD COLUMN `a` int DEFAULT 'LOCK=NONE', ALGORITHM = inplace /* LOCK=NONE */ -- LOCK=NONE"
    assert own_clauses(sql) == {"ALGORITHM": "INPLACE"}
    assert own_clauses("ALTER TABLE `t` DROP INDEX `i`, LOCK=SHARED") == {"LOCK": "SHARED"}
    assert own_clauses("ALTER TABLE `t` DROP INDEX `i`") == {}
    assert own_clauses("ALTER TABLE `t` DROP INDEX `i` /*M!100301 , LOCK=NONE */ # ALGORITHM=COPY") == {"LOCK": "NONE"}


def test_the_comment_says_no_lock_only_where_locks_are_read() -> None:
    """PostgreSQL's observation reads locks; MariaDB's and SQLite's do not: nothing heavy."""
    light = {"tables": ["shop_book"], "rewrites": [], "scan": False}
    assert observed_comment({**light, "locks": []}) == "-- observed: no new lock on a table that existed before it"
    assert observed_comment({**light, "algorithm": None, "lock": None}) == "-- observed: nothing heavy"
    assert observed_comment(light) == "-- observed: nothing heavy"


def test_the_comment_names_the_strongest_lock_per_table() -> None:
    """A foreign key takes three modes on the table it points at: the line names the strongest."""
    locks = [
        {"table": "shop_author", "mode": "AccessShareLock"},
        {"table": "shop_author", "mode": "ShareRowExclusiveLock"},
        {"table": "shop_author", "mode": "RowShareLock"},
        {"table": "shop_book", "mode": "ShareRowExclusiveLock"},
    ]
    held = [{"table": "shop_book", "mode": "AccessExclusiveLock"}]
    observed = {"tables": ["shop_book", "shop_author"], "locks": locks, "held": held, "rewrites": [], "scan": True}
    assert observed_comment(observed) == (
        "-- observed: ShareRowExclusiveLock on shop_author, shop_book; "
        "AccessExclusiveLock on shop_book (held already); reads every row"
    )


def _observed(runbook: Runbook, sql: str) -> dict[str, Any]:
    """What the runbook says the first schema step ``sql`` did."""
    steps = [step for block in runbook.migrations for step in block.steps if step.sql == sql]
    assert steps, sql
    observed = steps[0].observed
    assert observed is not None, sql
    return observed


def _example_runbook(tmp_path: Path) -> Runbook:
    """The example project's whole plan; each observed step has its comment line above it."""
    with fresh_database() as settings, use_database("default", settings):
        runbook = write_runbook("default", tmp_path / "forwards.sql")
    lines = (tmp_path / "forwards.sql").read_text().splitlines()
    for number, line in enumerate(lines):
        if '"observed": ' in line and line.startswith('-- byhand: {"step"'):
            observed = json.loads(line[len("-- byhand: ") :])["observed"]
            assert lines[number - 1] == observed_comment(observed)
    assert any(step.observed for step in _every_schema_step(runbook))
    return runbook


def _every_schema_step(runbook: Runbook) -> list[Step]:
    return [step for block in runbook.migrations for step in block.steps if step.kind == "schema"]


@pytest.mark.needs_server
@pytest.mark.skipif(VENDOR != "postgresql", reason="pg_locks and relfilenodes are PostgreSQL's")
def test_postgresql_locks_and_rewrites_are_read_from_the_server(tmp_path: Path) -> None:
    """The modes each statement took on tables that existed before it, and the rewrites."""
    runbook = _example_runbook(tmp_path)
    assert all(step.observed for step in _every_schema_step(runbook))
    drop_null = _observed(runbook, 'ALTER TABLE "auth_user" ALTER COLUMN "last_login" DROP NOT NULL;')
    assert drop_null == {
        "tables": ["auth_user"],
        "locks": [{"table": "auth_user", "mode": "AccessExclusiveLock"}],
        "rewrites": [],
        "scan": False,
        "held": [],
    }
    index = _observed(runbook, 'CREATE INDEX "shop_book_title_code_15da55dd_idx" ON "shop_book" ("title", "code");')
    assert (index["locks"], index["rewrites"], index["scan"]) == (
        [{"table": "shop_book", "mode": "ShareLock"}],
        [],
        True,
    )
    # Dropping a foreign key locks the table it points at too (AccessExclusiveLock).
    drop_fk = _observed(
        runbook,
        'SET CONSTRAINTS "shop_book_author_id_82b8ab51_fk_shop_author_id" IMMEDIATE; '
        'ALTER TABLE "shop_book" DROP CONSTRAINT "shop_book_author_id_82b8ab51_fk_shop_author_id";',
    )
    assert {"table": "shop_author", "mode": "AccessExclusiveLock"} in drop_fk["locks"]
    # int -> bigint on a primary key rewrites the table (its relfilenode changed); widening a varchar does not.
    rewritten = [step.observed["rewrites"] for step in _every_schema_step(runbook) if step.observed]
    assert ["shop_author"] in rewritten
    widen = _observed(runbook, 'ALTER TABLE "auth_user" ALTER COLUMN "email" TYPE varchar(254);')
    assert widen["rewrites"] == []
    # CREATE INDEX CONCURRENTLY cannot run in a transaction: its lock is PostgreSQL's documented one.
    concurrently = _observed(runbook, 'CREATE INDEX CONCURRENTLY "shop_book_promo_idx" ON "shop_book" ("promo");')
    assert concurrently["locks"] == [{"table": "shop_book", "mode": "ShareUpdateExclusiveLock"}]
    # A table made earlier in the runbook: the statement's locks there are its transaction's already.
    created = _observed(runbook, 'CREATE INDEX "shop_book_author_id_82b8ab51" ON "shop_book" ("author_id");')
    assert created["held"] == [{"table": "shop_book", "mode": "AccessExclusiveLock"}]


@pytest.mark.needs_server
@pytest.mark.skipif(VENDOR != "mysql", reason="ALGORITHM and LOCK clauses are MySQL's and MariaDB's")
def test_mariadb_gives_the_cheapest_algorithm_it_accepts(tmp_path: Path) -> None:
    """INSTANT for a new column, NOCOPY for an index, COPY (a rewrite) for a foreign key."""
    runbook = _example_runbook(tmp_path)
    add = _observed(runbook, "ALTER TABLE `shop_book` ADD COLUMN `pages` integer NULL;")
    assert (add["algorithm"], add["lock"], add["rewrites"]) == ("INSTANT", "NONE", [])
    index = _observed(runbook, "CREATE INDEX `shop_book_title_code_15da55dd_idx` ON `shop_book` (`title`, `code`);")
    assert (index["algorithm"], index["lock"], index["scan"]) == ("NOCOPY", "NONE", True)
    copies = [step.observed for step in _every_schema_step(runbook) if step.observed and step.observed["algorithm"]]
    fk = [o for o in copies if o["algorithm"] == "COPY" and "shop_author" in o["tables"]]
    assert fk and all(o["lock"] == "SHARED" and o["rewrites"] == [o["tables"][0]] for o in fk)
    # MODIFY … NULL runs in place, without a lock, but rebuilds the table (InnoDB's table id changes).
    in_place = [o for o in copies if o["algorithm"] == "INPLACE"]
    assert in_place and all(o["lock"] == "NONE" and o["rewrites"] == o["tables"][:1] for o in in_place)
    (created,) = [s.observed for s in _every_schema_step(runbook) if s.sql.startswith("CREATE TABLE `shop_publisher`")]
    assert created is not None
    assert (created["tables"], created["algorithm"], created["rewrites"]) == ([], None, [])


@pytest.mark.skipif(VENDOR != "sqlite", reason="Django remakes tables on SQLite")
def test_sqlite_remakes_are_rewrites(tmp_path: Path) -> None:
    """The INSERT … SELECT that copies a table into its remake rewrites it and reads every row."""
    runbook = _example_runbook(tmp_path)
    copies = [s for s in _every_schema_step(runbook) if s.sql.startswith('INSERT INTO "new__shop_book"')]
    assert copies
    for step in copies:
        assert step.observed is not None
        assert (step.observed["rewrites"], step.observed["scan"]) == (["shop_book"], True)


@pytest.mark.needs_server
@pytest.mark.skipif(VENDOR != "postgresql", reason="DROP INDEX CONCURRENTLY is PostgreSQL's")
def test_dropping_an_index_concurrently_names_the_table_of_the_index(tmp_path: Path) -> None:
    """DROP INDEX names no table: its ShareUpdateExclusiveLock is on the index's table."""
    with fresh_database() as settings, use_database("default", settings):
        call_command("migrate", "shop", "0009", verbosity=0)
        runbook = write_runbook("default", tmp_path / "back.sql", "shop", "0008")
    dropped = _observed(runbook, 'DROP INDEX CONCURRENTLY IF EXISTS "shop_book_promo_idx";')
    assert (dropped["tables"], dropped["locks"]) == (
        ["shop_book"],
        [{"table": "shop_book", "mode": "ShareUpdateExclusiveLock"}],
    )


@pytest.mark.needs_server
@pytest.mark.skipif(VENDOR == "sqlite", reason="ALGORITHM clauses are MariaDB's, schemas PostgreSQL's")
def test_what_a_runsql_says_of_itself_and_another_schema_s_table(tmp_path: Path) -> None:
    """MariaDB: a RunSQL's own ALGORITHM/LOCK is what runs (a probe's clause would replace
    it); ALTER IGNORE TABLE is probed too. PostgreSQL: a table of another schema keeps it."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.observed_sql"}):
        with fresh_database() as settings, use_database("default", settings):
            runbook = write_runbook("default", tmp_path / "catalog.sql", "catalog")
    steps = [step for step in _every_schema_step(runbook) if step.op in (1, 2)]
    observed = [step.observed for step in steps]
    if VENDOR == "mysql":
        own, ignore = observed
        assert own is not None and ignore is not None
        assert (own["algorithm"], own["lock"], own["rewrites"]) == ("COPY", "SHARED", ["catalog_category"])
        assert (ignore["algorithm"], ignore["rewrites"]) == ("COPY", ["catalog_category"])
    else:
        altered = observed[-1]
        assert altered is not None
        assert altered["tables"] == ["other.catalog_category"]
        assert altered["rewrites"] == ["other.catalog_category"]
        # Made earlier in the same transaction: its AccessExclusiveLock is held already.
        assert altered["held"] == [{"table": "other.catalog_category", "mode": "AccessExclusiveLock"}]
        assert {lock["table"] for lock in altered["locks"]} == {"other.catalog_category"}


@pytest.mark.needs_server
@pytest.mark.skipif(VENDOR == "sqlite", reason="algorithms are MariaDB's; transactions, schemas PostgreSQL's")
def test_what_cannot_be_observed_faithfully_is_not_observed_and_the_server_names_tables(tmp_path: Path) -> None:
    """MariaDB: an ALTER no probe could be taken for (a comment where the clause would go,
    LOCK= alone, ORDER BY) says no algorithm rather than "none" (review then reads its text).
    PostgreSQL: a RunSQL with its own BEGIN … COMMIT is not observed (its locks would be
    read after its COMMIT); a CONCURRENTLY index is on the table the server names from the
    text (another schema's; an unquoted name folded to lower case)."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.observed_odd"}):
        with fresh_database() as settings, use_database("default", settings):
            runbook = write_runbook("default", tmp_path / "catalog.sql", "catalog")
    by_op = {step.op: step.observed for step in _every_schema_step(runbook) if step.op}
    if VENDOR == "mysql":
        assert by_op == {1: None, 2: None, 3: None}
        return
    assert by_op[2] is None
    concurrently = [by_op[3], by_op[4], by_op[5]]
    assert [(o or {}).get("tables") for o in concurrently] == [
        ["other.catalog_category"],
        ["mixedcase"],
        ["other.catalog_category"],
    ]
    assert by_op[4] is not None and by_op[4]["locks"] == [{"table": "mixedcase", "mode": "ShareUpdateExclusiveLock"}]


@pytest.mark.needs_server
@pytest.mark.skipif(VENDOR != "postgresql", reason="LOCK TABLE outside a transaction block is refused by PostgreSQL")
def test_the_rehearsal_refuses_what_migrate_refuses_outside_a_transaction(tmp_path: Path) -> None:
    """Observed in a transaction of its own, LOCK TABLE would pass where migrate fails."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.observed_lock"}):
        with fresh_database() as settings, use_database("default", settings):
            with pytest.raises(Exception, match="LOCK TABLE can only be used in transaction blocks"):
                call_command("migrate", "catalog", verbosity=0)
        with fresh_database() as settings, use_database("default", settings):
            with pytest.raises(CommandError, match="LOCK TABLE can only be used in transaction blocks"):
                write_runbook("default", tmp_path / "catalog.sql", "catalog")
        assert not (tmp_path / "catalog.sql").exists()
