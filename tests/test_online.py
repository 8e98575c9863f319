"""byhand sql --online: the forms (pure), what a runbook's markers may claim of them, and how
apply runs them when a row breaks the constraint being validated (PostgreSQL)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings

from byhand.exceptions import RunbookFormatError, StatementFailed
from byhand.planning.online import put_online
from byhand.runbook import Block, Comment, Control, Runbook, Step, parse_runbook, sign_runbook
from byhand.vendors import get_vendor
from byhand.vendors.online import Part, postgresql_online_form
from support import (
    VENDOR,
    apply,
    byhand,
    database_url,
    fresh_database,
    oracle_step,
    recorded_rows,
    schema_of,
    target_for,
    use_database,
    write_runbook,
)

FORMS = [
    (
        'CREATE INDEX "a_b_idx" ON "a" ("b");',
        "index",
        [('CREATE INDEX CONCURRENTLY "a_b_idx" ON "a" ("b");', "alone")],
    ),
    (
        'CREATE UNIQUE INDEX "u" ON "a" USING btree ("b") WHERE "c";',
        "index",
        [('CREATE UNIQUE INDEX CONCURRENTLY "u" ON "a" USING btree ("b") WHERE "c";', "alone")],
    ),
    (
        'ALTER TABLE "a" ADD CONSTRAINT "u" UNIQUE NULLS NOT DISTINCT ("b", "c") DEFERRABLE INITIALLY DEFERRED;',
        "unique",
        [
            ('CREATE UNIQUE INDEX CONCURRENTLY "u" ON "a" ("b", "c") NULLS NOT DISTINCT;', "alone"),
            ('ALTER TABLE "a" ADD CONSTRAINT "u" UNIQUE USING INDEX "u" DEFERRABLE INITIALLY DEFERRED;', "with"),
        ],
    ),
    (
        'ALTER TABLE "a" ADD CONSTRAINT "f" FOREIGN KEY ("b_id") REFERENCES "b" ("id") DEFERRABLE INITIALLY DEFERRED;',
        "foreign-key",
        [
            (
                'ALTER TABLE "a" ADD CONSTRAINT "f" FOREIGN KEY ("b_id") REFERENCES "b" ("id") '
                "DEFERRABLE INITIALLY DEFERRED NOT VALID;",
                "with",
            ),
            ('ALTER TABLE "a" VALIDATE CONSTRAINT "f";', "own"),
        ],
    ),
    (
        'ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" >= 0 AND "y" IN (\'a\', \'b\'));',
        "check",
        [
            ('ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" >= 0 AND "y" IN (\'a\', \'b\')) NOT VALID;', "with"),
            ('ALTER TABLE "a" VALIDATE CONSTRAINT "c";', "own"),
        ],
    ),
    (
        'ALTER TABLE "a" ALTER COLUMN "x" SET NOT NULL;',
        "not-null",
        [
            ('ALTER TABLE "a" DROP CONSTRAINT IF EXISTS "byhand_nn_8b86bced10290476";', "with"),
            ('ALTER TABLE "a" ADD CONSTRAINT "byhand_nn_8b86bced10290476" CHECK ("x" IS NOT NULL) NOT VALID;', "with"),
            ('ALTER TABLE "a" VALIDATE CONSTRAINT "byhand_nn_8b86bced10290476";', "own"),
            ('ALTER TABLE "a" ALTER COLUMN "x" SET NOT NULL;', "with"),
            ('ALTER TABLE "a" DROP CONSTRAINT "byhand_nn_8b86bced10290476";', "with"),
        ],
    ),
]

NO_FORM = [
    'CREATE INDEX CONCURRENTLY "a_b_idx" ON "a" ("b");',  # already online
    'ALTER TABLE "a" ADD CONSTRAINT "f" FOREIGN KEY ("b_id") REFERENCES "b" ("id") NOT VALID;',
    'ALTER TABLE "a" ALTER COLUMN "x" TYPE bigint USING "x"::bigint;',  # rewrites: no online form
    'ALTER TABLE "a" ALTER COLUMN "x" TYPE bigint, ALTER COLUMN "x" SET NOT NULL;',  # two actions
    'ALTER TABLE "a" ADD CONSTRAINT "u" UNIQUE ("b") USING INDEX TABLESPACE "t";',
    'ALTER TABLE "a" ADD CONSTRAINT "u" UNIQUE ("b") INCLUDE ("c");',
    'ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" > 0) NO INHERIT;',
    'ALTER TABLE "a" ADD COLUMN "b_id" bigint NULL CONSTRAINT "f" REFERENCES "b"("id"); SET CONSTRAINTS "f" IMMEDIATE;',
    'ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" > 0); DROP TABLE "b";',
    'CREATE INDEX "a_b_idx" ON "a" ("b"); -- note',
    "ALTER TABLE a ALTER COLUMN x SET NOT NULL;",  # not Django's quoting
]


@pytest.mark.parametrize(("sql", "kind", "parts"), FORMS, ids=[kind for _, kind, _ in FORMS])
def test_the_online_form_of_each_statement_django_writes(sql: str, kind: str, parts: list[tuple[str, str]]) -> None:
    """Each of Django's PostgreSQL statements with an online form: its parts, and how each runs."""
    form = postgresql_online_form(sql)
    assert form is not None
    assert (form.kind, form.table) == (kind, "a")
    assert [(part.sql, part.runs) for part in form.parts] == parts


@pytest.mark.parametrize("sql", NO_FORM)
def test_statements_with_no_online_form(sql: str) -> None:
    """Already online, a rewrite, several actions, clauses the form would lose, more than one
    statement, a comment, another quoting: none has a form, so each runs as written."""
    assert postgresql_online_form(sql) is None


def test_sqlite_has_no_online_forms() -> None:
    """SQLite remakes a table for most changes, and one writer holds the whole file anyway."""
    sqlite = get_vendor("sqlite")
    assert sqlite.online_form('CREATE INDEX "a_b_idx" ON "a" ("b");', {"tables": ["a"]}) is None
    assert not sqlite.online_forms


def _probed(algorithm: str, lock: str, *, scan: bool = False) -> dict[str, object]:
    """What the rehearsal observes of a MySQL/MariaDB statement on table ``a``."""
    return {"tables": ["a"], "rewrites": ["a"] if scan else [], "scan": scan, "algorithm": algorithm, "lock": lock}


MYSQL_FORMS = [
    (
        "ALTER TABLE `a` ADD COLUMN `x` integer NULL;",
        _probed("INSTANT", "NONE"),
        "ALTER TABLE `a` ADD COLUMN `x` integer NULL, ALGORITHM=INSTANT;",
    ),
    (
        "ALTER TABLE `a` MODIFY `x` integer NULL;",
        _probed("INPLACE", "NONE", scan=True),
        "ALTER TABLE `a` MODIFY `x` integer NULL, ALGORITHM=INPLACE, LOCK=NONE;",
    ),
    (
        "CREATE INDEX `a_x` ON `a` (`x`);",
        _probed("NOCOPY", "NONE"),
        "CREATE INDEX `a_x` ON `a` (`x`) ALGORITHM=NOCOPY LOCK=NONE;",
    ),
    (
        "DROP INDEX `a_x` ON `a`;",
        _probed("NOCOPY", "NONE"),
        "ALTER TABLE `a` DROP INDEX `a_x`, ALGORITHM=NOCOPY, LOCK=NONE;",
    ),
]


@pytest.mark.parametrize(("sql", "observed", "written"), MYSQL_FORMS, ids=["instant", "inplace", "index", "drop"])
def test_mysql_s_form_is_the_statement_with_the_algorithm_the_rehearsal_found(
    sql: str, observed: dict[str, object], written: str
) -> None:
    """The statement as the rehearsal's probe ran it: the algorithm, and LOCK=NONE unless
    INSTANT, in the statement; one part, run where Django's ran, keeping what was observed."""
    form = get_vendor("mysql").online_form(sql, observed)
    assert form is not None
    assert (form.kind, form.table, form.observed) == ("algorithm", "a", True)
    [part] = form.parts
    assert part.sql == written
    assert (part.runs, part.scans) == ("with", bool(observed["scan"]))
    said = {"INSTANT": "changes metadata only", "INPLACE": "rebuilds the table", "NOCOPY": "works in place"}
    assert said[str(observed["algorithm"])] in form.why


@pytest.mark.parametrize(
    ("sql", "observed"),
    [
        ("ALTER TABLE `a` ADD FULLTEXT INDEX `f` (`x`);", _probed("INPLACE", "SHARED", scan=True)),
        ("ALTER TABLE `a` ADD COLUMN `x` integer NULL, ALGORITHM=INPLACE;", _probed("INPLACE", "NONE")),
        ("ALTER TABLE `a` ADD COLUMN `x` integer NULL;", None),
        ("ALTER TABLE `a` ADD COLUMN `x` integer NULL;", {"tables": ["a"]}),
        ("ALTER TABLE `a` ADD COLUMN `x` integer NULL; -- note", _probed("INSTANT", "NONE")),
        ("CREATE TABLE `a` (`x` integer NULL);", {"tables": ["a"], "algorithm": None, "lock": None}),
    ],
    ids=["shared-lock", "own-clause", "not-observed", "no-algorithm", "comment", "create-table"],
)
def test_mysql_statements_that_keep_django_s_form(sql: str, observed: dict[str, object] | None) -> None:
    """Writes would wait, a clause of its own, nothing probed, or nothing to probe: no form,
    so the statement runs as Django wrote it."""
    assert get_vendor("mysql").online_form(sql, observed) is None


def test_what_only_a_copy_will_do_runs_through_pt_online_schema_change() -> None:
    """ALGORITHM=COPY: Django's statement as it is (the mariadb client runs it plainly), one
    part, in the form byhand apply runs through pt-online-schema-change."""
    sql = "ALTER TABLE `a` MODIFY `x` bigint NOT NULL, ADD CONSTRAINT `k` FOREIGN KEY (`x`) REFERENCES `b` (`id`);"
    form = get_vendor("mysql").online_form(sql, _probed("COPY", "SHARED", scan=True))
    assert form is not None
    assert (form.kind, form.table, form.observed) == ("copy", "a", True)
    assert form.parts == (Part(sql, "with", scans=True),)
    assert "records the migration only after that cut-over" in form.why


def test_a_copy_the_rehearsal_found_pt_online_schema_change_cannot_make_stays_as_django_wrote_it() -> None:
    """The rehearsal saw the table has a key to itself (or no key, or triggers): no form."""
    observed = {**_probed("COPY", "SHARED", scan=True), "uncopied": "a foreign key to itself"}
    assert get_vendor("mysql").online_form("ALTER TABLE `a` MODIFY `x` bigint NOT NULL;", observed) is None


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE `a` ADD CONSTRAINT `k` FOREIGN KEY (`x`) REFERENCES `a` (`id`);",
        "ALTER TABLE `a` RENAME TO `b`;",
        "ALTER TABLE `a` ADD COLUMN `t` bigint NULL UNIQUE;",
        "ALTER TABLE `a` DROP PRIMARY KEY, ADD PRIMARY KEY (`x`);",
        "ALTER TABLE `a` MODIFY `x` bigint NOT NULL; -- note",
        "ALTER TABLE `a` MODIFY `x` bigint NOT NULL, ALGORITHM=COPY;",
        "ALTER TABLE `a` MODIFY `x` bigint NOT NULL; ALTER TABLE `a` MODIFY `y` bigint NOT NULL;",
        "UPDATE `a` SET `x` = 1;",
    ],
    ids=["key-to-itself", "rename", "unique", "primary-key", "comment", "own-clause", "two-statements", "not-an-alter"],
)
def test_copies_pt_online_schema_change_cannot_run_stay_as_django_wrote_them(sql: str) -> None:
    """A key to the table itself (the copy's would point at the old table), a rename, a
    unique key (the copy would skip duplicates where migrate fails), the primary key its
    triggers find rows by, a comment, a clause or a statement of its own:
    no form, the statement copies the table as Django wrote it."""
    assert get_vendor("mysql").online_form(sql, _probed("COPY", "SHARED", scan=True)) is None


def _block(*sqls: str, atomic: bool = True) -> Block:
    """A PostgreSQL migration block of ``sqls`` and its bookkeeping, as compiling writes it."""
    items = [Control("BEGIN;")] if atomic else []
    items += [Step(kind="schema", sql=sql, op=number) for number, sql in enumerate(sqls)]
    items.append(
        Step(
            kind="record",
            sql='INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (\'shop\', \'0002_x\', NOW());',
        )
    )
    items += [Control("COMMIT;")] if atomic else []
    return Block(kind="migration", atomic=atomic, migration="shop.0002_x", records=[["shop", "0002_x"]], items=items)


def _layout(block: Block) -> list[str]:
    return [
        item.sql if isinstance(item, (Control, Step)) else "#" for item in block.items if not isinstance(item, Comment)
    ]


def test_an_online_block_runs_django_s_order_in_transactions_that_end_before_each_long_read() -> None:
    """Statements stay in Django's order; BEGIN/COMMIT hold those that may share a transaction;
    CONCURRENTLY and VALIDATE stand outside; the row is written with the last statements."""
    block = _block(
        'ALTER TABLE "a" ADD COLUMN "x" integer NULL;',
        'CREATE INDEX "a_x" ON "a" ("x");',
        'ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" > 0);',
        'ALTER TABLE "a" ALTER COLUMN "x" TYPE bigint;',
    )
    assert put_online(block, get_vendor("postgresql")) == 2
    assert (block.atomic, block.online) == (False, True)
    assert _layout(block) == [
        "BEGIN;",
        'ALTER TABLE "a" ADD COLUMN "x" integer NULL;',
        "COMMIT;",
        'CREATE INDEX CONCURRENTLY "a_x" ON "a" ("x");',
        "BEGIN;",
        'ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" > 0) NOT VALID;',
        "COMMIT;",
        'ALTER TABLE "a" VALIDATE CONSTRAINT "c";',
        "BEGIN;",
        'ALTER TABLE "a" ALTER COLUMN "x" TYPE bigint;',
        block.steps[-1].sql,
        "COMMIT;",
    ]
    comments = [item.text for item in block.items if isinstance(item, Comment)]
    assert comments[1] == '--   CREATE INDEX "a_x" ON "a" ("x");'  # Django's statement, beside its form


def test_what_the_migration_creates_and_migrations_with_manual_steps_are_left_as_django_wrote_them() -> None:
    """An index on a table made in the same migration needs no form (nobody sees the table
    before it commits); a block with a manual step is not split."""
    made = _block('CREATE TABLE "n" ("id" bigint NOT NULL PRIMARY KEY);', 'CREATE INDEX "n_i" ON "n" ("id");')
    manual = _block('CREATE INDEX "a_x" ON "a" ("x");')
    manual.items.insert(1, Step(kind="manual", op=1, callable="shop.migrations.fill"))
    for block in (made, manual):
        before = list(block.items)
        assert put_online(block, get_vendor("postgresql")) == 0
        assert block.items == before and block.atomic and not block.online


def test_statements_on_exempt_tables_are_left_as_django_wrote_them() -> None:
    """A table the vendor exempts (PostgreSQL: partitioned, where CONCURRENTLY and NOT VALID
    foreign keys are refused) keeps Django's statements; the others of the block get forms."""
    block = _block('CREATE INDEX "p_x" ON "parted" ("x");', 'CREATE INDEX "a_x" ON "a" ("x");')
    assert put_online(block, get_vendor("postgresql"), exempt={"parted"}) == 1
    assert [step.sql for step in block.steps][:2] == [
        'CREATE INDEX "p_x" ON "parted" ("x");',
        'CREATE INDEX CONCURRENTLY "a_x" ON "a" ("x");',
    ]


@pytest.mark.needs_server
def test_postgresql_exempts_partitioned_tables_and_their_partitions() -> None:
    """What PostgreSQL's online_exempt_tables reads on a database: partitioned tables and
    partitions, not plain tables."""
    if VENDOR != "postgresql":
        pytest.skip("partitioned tables are PostgreSQL's")
    with fresh_database() as db, use_database("default", db):
        with connections["default"].cursor() as cursor:
            cursor.execute("CREATE TABLE parted (x integer) PARTITION BY RANGE (x)")
            cursor.execute("CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10)")
            cursor.execute("CREATE TABLE plain (x integer)")
        assert get_vendor("postgresql").online_exempt_tables(connections["default"]) == {"parted", "parted_1"}


def _online_text(*sqls: str, atomic: bool = True) -> str:
    block = _block(*sqls, atomic=atomic)
    put_online(block, get_vendor("postgresql"))
    return Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block]).render()


def _signed(text: str) -> str:
    return sign_runbook(text, by="mallory", at="2026-12-07T00:00:00Z")[0]


def _mysql_online_text(sql: str, observed: dict[str, object]) -> str:
    block = _block(sql, atomic=False)
    block.items[0] = Step(kind="schema", sql=sql, op=0, observed=observed)
    assert put_online(block, get_vendor("mysql")) == 1
    return Runbook(header={"direction": "forwards", "vendor": "mysql"}, blocks=[block]).render()


def _refused_once_edited(text: str, edit: object, says: str) -> None:
    """``text`` signed parses; ``edit`` of it (a real change), re-signed, is refused saying ``says``."""
    parse_runbook(_signed(text))
    edited = edit(text)  # type: ignore[operator]
    assert edited != text
    with pytest.raises(RunbookFormatError, match=says):
        parse_runbook(_signed(edited))


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda t: t.replace("ALGORITHM=INPLACE, LOCK=NONE;", "ALGORITHM=COPY, LOCK=SHARED;"), "it runs"),
        (lambda t: t.replace('"algorithm": "INPLACE"', '"algorithm": "INSTANT"'), "it runs"),
        (lambda t: t.replace('"algorithm": "INPLACE"', '"algorithm": "COPY"'), "no such online form"),
        (lambda t: t.replace('"lock": "NONE"', '"lock": "SHARED"'), "no such online form"),
    ],
    ids=["clause", "observed-instant", "observed-copy", "observed-lock"],
)
def test_a_re_signed_edit_of_a_mysql_form_is_refused(edit: object, says: str) -> None:
    """MySQL/MariaDB's form is derived from the statement and what the rehearsal observed, both
    in the runbook: a re-signed runbook whose clause or observation was changed is refused."""
    text = _mysql_online_text("ALTER TABLE `a` MODIFY `x` integer NULL;", _probed("INPLACE", "NONE", scan=True))
    assert "\nALTER TABLE `a` MODIFY `x` integer NULL, ALGORITHM=INPLACE, LOCK=NONE;\n" in text
    _refused_once_edited(text, edit, says)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda t: t.replace("\nALTER TABLE `a` MODIFY `x` bigint NOT NULL;\n", "\nDROP TABLE `a`;\n"), "it runs"),
        (lambda t: t.replace('"algorithm": "COPY"', '"algorithm": "INPLACE"'), "no such online form"),
        (lambda t: t.replace('"lock": "SHARED"', '"lock": "SHARED", "uncopied": "x"'), "no such online form"),
    ],
    ids=["statement", "observed-inplace", "observed-uncopied"],
)
def test_a_re_signed_edit_of_a_copy_is_refused(edit: object, says: str) -> None:
    """The copy form (Django's statement, which apply runs through pt-online-schema-change)
    is derived again too: a re-signed runbook that runs another statement through it, or whose
    observation no longer calls for a copy, is refused."""
    text = _mysql_online_text("ALTER TABLE `a` MODIFY `x` bigint NOT NULL;", _probed("COPY", "SHARED", scan=True))
    assert '"online": {"form": "copy", "part": 1, "of": 1' in text
    _refused_once_edited(text, edit, says)


def test_a_non_atomic_migration_s_forms_run_each_on_their_own() -> None:
    """Without BEGIN/COMMIT around the migration, each part commits on its own; the runbook
    parses back as written."""
    text = _online_text('ALTER TABLE "a" ALTER COLUMN "x" SET NOT NULL;', atomic=False)
    runbook = parse_runbook(text)
    assert "BEGIN;" not in text and runbook.render() == text
    assert [step.online["part"] for step in runbook.blocks[0].steps if step.online] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda t: t.replace('"x" > 0) NOT VALID;', '"x" > 1) NOT VALID;'), "it runs"),
        (lambda t: t.replace('VALIDATE CONSTRAINT "c";', 'VALIDATE CONSTRAINT "d";'), "it runs"),
        (lambda t: t.replace('"form": "check", "part": 1, "of": 2', '"form": "index", "part": 1, "of": 2'), "no such"),
        (
            lambda t: t.replace(
                '"replaces": "ALTER TABLE \\"a\\" ADD CONSTRAINT \\"c\\" CHECK (\\"x\\" > 0);"',
                '"replaces": "ALTER TABLE \\"a\\" ADD CONSTRAINT \\"c\\" CHECK (\\"x\\" < 0);"',
            ),
            "it runs",
        ),
        (
            lambda t: t.replace(
                'COMMIT;\n-- byhand: {"step": "schema", "op": 0, "lines": 1, "online": {"form": "check", "part": 2',
                '-- byhand: {"step": "schema", "op": 0, "lines": 1, "online": {"form": "check", "part": 2',
            ).replace('\nBEGIN;\n-- byhand: {"step": "record"', '\n-- byhand: {"step": "record"'),
            "inside BEGIN/COMMIT",
        ),
        (lambda t: t.replace(', "online": true}', "}"), 'does not say "online"'),
        (lambda t: t[: t.rindex("COMMIT;")] + t[t.rindex("COMMIT;") + len("COMMIT;\n") :], "has no COMMIT"),
        (lambda t: t.replace("BEGIN;", "BEGIN;\nBEGIN;", 1), "must pair, unnested"),
        (lambda t: t.replace('"atomic": false', '"atomic": true'), '"atomic": true'),
    ],
    ids=[
        "part-sql",
        "validated-name",
        "form-kind",
        "replaces",
        "validate-in-transaction",
        "block-marker",
        "no-last-commit",
        "nested-begin",
        "atomic",
    ],
)
def test_a_re_signed_edit_of_an_online_form_is_refused(edit: object, says: str) -> None:
    """What the markers say of a form must be what byhand derives from Django's statement: a
    re-signed edit of a part, of what it replaces, or of where it runs is refused."""
    text = _online_text('ALTER TABLE "a" ADD CONSTRAINT "c" CHECK ("x" > 0);')
    edited = edit(text)  # type: ignore[operator]
    assert edited != text
    with pytest.raises(RunbookFormatError, match=says):
        parse_runbook(_signed(edited))


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("COMMIT;\n", "", 1),
        lambda t: t.replace("BEGIN;\n", "BEGIN;\nCOMMIT;\nBEGIN;\n", 1),
    ],
    ids=["no-commit", "two-transactions"],
)
def test_a_plain_block_is_one_transaction_or_none(edit: object) -> None:
    """Not online: an atomic block is one BEGIN … COMMIT; a COMMIT removed (psql would roll
    the migration back where apply commits it) or a transaction split is refused, re-signed."""
    block = _block('ALTER TABLE "a" ADD COLUMN "x" integer NULL;')
    text = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block]).render()
    parse_runbook(_signed(text))
    with pytest.raises(RunbookFormatError, match=r"BEGIN|COMMIT"):
        parse_runbook(_signed(edit(text)))  # type: ignore[operator]


def test_a_step_s_online_marker_must_have_its_shape() -> None:
    """Part numbers and "replaces" as byhand writes them, or the runbook is refused."""
    text = _online_text('CREATE INDEX "a_x" ON "a" ("x");')
    broken = text.replace('"part": 1, "of": 1', '"part": 2, "of": 1')
    with pytest.raises(RunbookFormatError, match='"online" must hold'):
        parse_runbook(_signed(broken))


@pytest.mark.needs_server
def test_sql_online_is_refused_where_the_vendor_has_no_forms(tmp_path: Path) -> None:
    """On SQLite: a clear refusal before a scratch copy is made, nothing written; sql's exit
    status 1, as for any failure of sql."""
    if VENDOR != "sqlite":
        pytest.skip("PostgreSQL and MySQL/MariaDB have online forms")
    out = tmp_path / "runbook.sql"
    with fresh_database() as db, use_database("default", db):
        named = get_vendor(VENDOR).title
        with pytest.raises(CommandError, match=f"--online has no safe forms for {named}: only") as refused:
            call_command("byhand", "sql", "--online", "-o", str(out), stdout=io.StringIO(), stderr=io.StringIO())
    assert refused.value.returncode == 1
    assert not out.exists()


@pytest.mark.needs_server
def test_a_row_that_breaks_the_constraint_stops_the_online_migration_until_it_is_fixed(tmp_path: Path) -> None:
    """VALIDATE fails on a row the check refuses: apply stops, the migration unrecorded and its
    check NOT VALID (new rows are held to it already); once the row is fixed, apply resumes and
    the schema is migrate's."""
    if VENDOR != "postgresql":
        pytest.skip("online forms are PostgreSQL's")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.online"}):
        with fresh_database() as a, fresh_database() as b, fresh_database() as c:
            oracle_step("default", a, b, tmp_path / "0001.sql", "catalog", "0001", c=c)
            with use_database("default", c):
                write_runbook("default", tmp_path / "0002.sql", "catalog", options=["--online"])
            target = target_for(c)
            try:
                target.execute("UPDATE catalog_item SET qty = -1 WHERE id = 7")
                with pytest.raises(StatementFailed, match="item_qty_gte_0") as failed:
                    apply(tmp_path / "0002.sql", c)
                assert failed.value.where == "catalog.0002_online statement 7/19"
                seventh = parse_runbook((tmp_path / "0002.sql").read_text()).migrations[0].steps[6]
                assert seventh.sql == 'ALTER TABLE "catalog_item" VALIDATE CONSTRAINT "item_qty_gte_0";'
                assert target.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'item_qty_gte_0'") == [
                    (False,)
                ]
                assert target.recorded_migrations() == {("catalog", "0001_initial")}
                target.execute("UPDATE catalog_item SET qty = 7 WHERE id = 7")
                assert apply(tmp_path / "0002.sql", c)[1].applied == 2
            finally:
                target.close()
            oracle_step("default", a, b, tmp_path / "0002-b.sql", "catalog", sql_options=["--online"])
            with use_database("default", c):
                schema_c, rows_c = schema_of("default"), recorded_rows("default")
            schema_c.pop("byhand_journal", None)
            with use_database("default", a):
                assert (schema_c, rows_c) == (schema_of("default"), recorded_rows("default"))


@pytest.mark.needs_server
def test_review_shows_what_each_part_replaces_and_why(tmp_path: Path) -> None:
    """byhand review of an online runbook: each part says which form it belongs to, the first
    the statement of Django's it replaces and why; no part blocks writes for a whole read,
    where the plain runbook's statements do (and review says --online writes their forms)."""
    if VENDOR != "postgresql":
        pytest.skip("online forms are PostgreSQL's")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.online"}):
        with fresh_database() as db, use_database("default", db):
            call_command("migrate", "catalog", "0001", verbosity=0)
            write_runbook("default", tmp_path / "plain.sql", "catalog")
            write_runbook("default", tmp_path / "online.sql", "catalog", options=["--online"])
            reviewed = {}
            for name in ("plain", "online"):
                path = str(tmp_path / f"{name}.sql")
                done = byhand("review", path, "--database-url", database_url(db), "--big-rows", "100")
                assert done.returncode == 0, done.stderr
                reviewed[name] = done.stdout
    sections = {
        name: text.split("catalog.0002_online")[1].split("catalog.0003_own_sql")[0] for name, text in reviewed.items()
    }
    assert " HIGH " not in sections["online"]
    assert sections["plain"].count(" HIGH ") == 8
    assert "byhand sql --online writes it" in reviewed["plain"]
    assert "byhand sql --online writes it" not in reviewed["online"]
    assert "online: part 1 of 2 of the check form" in reviewed["online"]
    assert (
        'instead of Django\'s ALTER TABLE "catalog_item" ADD CONSTRAINT "item_qty_gte_0" CHECK ("qt…'
        in (reviewed["online"])
    )
    assert "because ADD CONSTRAINT … CHECK reads every row" in reviewed["online"]
    assert "online runbook (byhand sql --online)" in reviewed["online"]
    # What the rehearsal's one transaction held is not said of the online block's transactions.
    assert "taken by an earlier statement" not in sections["online"]
    assert "online: left as Django wrote it (its migration's own SQL" in reviewed["online"]
    unique_column = reviewed["online"].split('ADD COLUMN "code" varchar(10) NULL UNIQUE;')[1].splitlines()[1]
    assert unique_column.strip() == "online: no safe form byhand writes for it; it runs as Django wrote it"
    inspected = byhand("inspect", str(tmp_path / "online.sql"))
    assert inspected.returncode == 0, inspected.stderr
    assert "  online: statements with a safe form are written in it (review names those left" in inspected.stdout
    assert (
        "      online: 9 statement(s) in safe forms, several transactions (index, unique x2, check, not-null, "
        "index x2, foreign-key, index)"
    ) in inspected.stdout


@pytest.mark.needs_server
def test_a_unique_build_that_finds_duplicates_says_what_it_left(tmp_path: Path) -> None:
    """CREATE UNIQUE INDEX CONCURRENTLY fails on duplicate rows and leaves an INVALID index:
    apply says so, and that running the runbook again drops it first; once the rows are
    fixed, it does, and the migration completes."""
    if VENDOR != "postgresql":
        pytest.skip("online forms are PostgreSQL's")
    left = 'It left what running the runbook again drops first (DROP INDEX CONCURRENTLY IF EXISTS "item_name_uniq";).'
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.online"}), fresh_database() as db:
        with use_database("default", db):
            call_command("migrate", "catalog", "0001", verbosity=0)
            write_runbook("default", tmp_path / "0002.sql", "catalog", "0002", options=["--online"])
        target = target_for(db)
        try:
            target.execute("UPDATE catalog_item SET name = 'item 1' WHERE id = 2")
            with pytest.raises(StatementFailed) as failed:
                apply(tmp_path / "0002.sql", db)
            assert failed.value.where == "catalog.0002_online statement 2/19"
            assert left in str(failed.value), str(failed.value)
            invalid = "SELECT count(*) FROM pg_index WHERE NOT indisvalid AND indexrelid = 'item_name_uniq'::regclass"
            assert target.execute(invalid) == [(1,)]
            target.execute("UPDATE catalog_item SET name = 'item 2' WHERE id = 2")
            events, result = apply(tmp_path / "0002.sql", db)
            assert result.applied == 1
            assert "invalid-index-dropped" in [event.name for event in events]
            assert target.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == [(0,)]
        finally:
            target.close()


@pytest.mark.needs_server
def test_a_table_that_needs_a_copy_after_all_is_refused_by_the_server_not_copied(tmp_path: Path) -> None:
    """MySQL/MariaDB: the rehearsal found ALGORITHM=INSTANT for shop 0004's ADD COLUMN. On a
    target whose shop_book has a FULLTEXT index the rehearsal's copy did not have (made by
    hand after the runbook), the server could only rebuild the table while writes wait, and
    without the clause would do so silently. With it the server refuses: apply stops at that
    statement, the migration unrecorded and the column not added. Dropping the index is not
    enough (InnoDB keeps the hidden FTS_DOC_ID column it added until the table is rebuilt);
    once the DBA has rebuilt it too, apply resumes and completes."""
    if VENDOR != "mysql":
        pytest.skip("ALGORITHM clauses are MySQL's and MariaDB's")
    pages = (
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'shop_book' AND COLUMN_NAME = 'pages'"
    )
    with fresh_database() as db:
        with use_database("default", db):
            call_command("migrate", "shop", "0003", verbosity=0)
            write_runbook("default", tmp_path / "0004.sql", "shop", "0004", options=["--online"])
        target = target_for(db)
        try:
            target.execute("CREATE FULLTEXT INDEX by_hand ON shop_book (title)")
            with pytest.raises(StatementFailed, match="ALGORITHM=INSTANT is not supported") as failed:
                apply(tmp_path / "0004.sql", db)
            assert failed.value.where.startswith("shop.0004_book_changes statement 1/")
            assert "Rebuild the table at a quiet hour (ALTER TABLE ... FORCE)" in str(failed.value)
            assert ("shop", "0004_book_changes") not in target.recorded_migrations()
            assert target.execute(pages) == [(0,)]
            target.execute("DROP INDEX by_hand ON shop_book")
            with pytest.raises(StatementFailed, match="ALGORITHM=INSTANT is not supported"):
                apply(tmp_path / "0004.sql", db)
            target.execute("ALTER TABLE shop_book FORCE")
            apply(tmp_path / "0004.sql", db)
            assert ("shop", "0004_book_changes") in target.recorded_migrations()
            assert target.execute(pages) == [(1,)]
        finally:
            target.close()
