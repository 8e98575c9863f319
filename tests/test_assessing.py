"""Review's judgement, without a database: what locks block, the risk rules, locks an atomic
block carries, new tables, statements not observed, Django's hazards, squawk's rules by line."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from builders import BACKFILL, postgresql_runbook, record
from byhand.hazards import KEY_CHANGE_NOTE, find_hazards, key_changes
from byhand.operating.assessing import Thresholds, judge, parse_size, scans
from byhand.operating.judging import assess_runbook
from byhand.operating.review_report import format_review
from byhand.operating.reviewing import MigrationReview, Review
from byhand.operating.squawking import find_squawk, run_squawk
from byhand.runbook import Block, Comment, Control, Runbook, Step
from byhand.vendors.reviewing import REVIEW_FACTS, TableSize

PG = REVIEW_FACTS["postgresql"]
BIG = TableSize(rows=200_000, bytes=50 * 1024 * 1024)
SMALL = TableSize(rows=40, bytes=16384)
EMPTY = TableSize(rows=0, bytes=8192)


def observed(*locks: tuple[str, str], scan: bool = False, rewrites: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "tables": sorted({table for table, _ in locks}),
        "locks": [{"table": table, "mode": mode} for table, mode in locks],
        "algorithm": None,
        "rewrites": list(rewrites),
        "scan": scan,
    }


@pytest.mark.parametrize(
    ("mode", "blocks"),
    [
        ("AccessExclusiveLock", "reads and writes"),
        ("ExclusiveLock", "writes"),
        ("ShareRowExclusiveLock", "writes"),
        ("ShareLock", "writes"),
        ("ShareUpdateExclusiveLock", "none"),
        ("RowExclusiveLock", "none"),
        ("RowShareLock", "none"),
        ("AccessShareLock", "none"),
    ],
)
def test_postgresql_lock_modes_block(mode: str, blocks: str) -> None:
    """Each pg_locks mode, as the issue lists them."""
    assert PG.blocks(observed(("t", mode))) == (blocks, [])


@pytest.mark.parametrize(
    ("algorithm", "lock", "blocks"),
    [
        ("INSTANT", "NONE", "none"),
        ("INPLACE", "NONE", "none"),
        ("NOCOPY", "SHARED", "writes"),
        ("COPY", "SHARED", "writes"),
        ("INPLACE", "EXCLUSIVE", "reads and writes"),
        (None, None, "none"),
        ("INPLACE", None, None),
    ],
)
def test_mariadb_algorithm_and_lock_block(algorithm: str | None, lock: str | None, blocks: str | None) -> None:
    """INSTANT or LOCK=NONE block nothing; SHARED writes; EXCLUSIVE both; no ALTER, a metadata
    lock; an ALGORITHM without a LOCK, unknown."""
    assert REVIEW_FACTS["mysql"].blocks({"algorithm": algorithm, "lock": lock})[0] == blocks


def test_sqlite_blocks_writers_and_nothing_is_known_of_an_unobserved_server_statement() -> None:
    """SQLite: every write blocks the database's writers. A server statement not observed: unknown."""
    assert REVIEW_FACTS["sqlite"].blocks(None)[0] == "writes"
    assert PG.blocks(None) == (None, [])
    assert REVIEW_FACTS["mysql"].blocks(None) == (None, [])


def rules(**overrides: Any) -> tuple[str, list[str]]:
    arguments: dict[str, Any] = {
        "tables": ["t"],
        "new": set(),
        "sizes": {"t": BIG},
        "blocks": "writes",
        "heavy": ["reads every row"],
        "exclusive": [],
        "thresholds": Thresholds(),
    }
    judgement = judge(**{**arguments, **overrides})
    return judgement.risk, judgement.reasons


def test_risk_rules() -> None:
    """high: heavy and blocking on a big table; medium: blocking on a small one, online on a
    big one, a size unknown, an exclusive lock on a big table; low: empty, new, light."""
    assert rules() == ("high", ["reads every row", "blocks writes on a big table: t (200,000 rows, 50 MB)"])
    assert rules(sizes={"t": SMALL}) == (
        "medium",
        ["reads every row", "blocks writes while it works: t (40 rows, 16 kB)"],
    )
    assert rules(blocks="none")[0] == "medium"
    assert rules(blocks="none", sizes={"t": SMALL}) == (
        "low",
        ["reads every row", "online, on a small table: t (40 rows, 16 kB)"],
    )
    assert rules(sizes={"t": EMPTY}) == ("low", ["reads every row", "on empty tables: t (0 rows, 8.0 kB)"])
    assert rules(sizes={}) == (
        "medium",
        ["reads every row", "blocks writes while it works: t (size unknown: not on this database)", "size unknown: t"],
    )
    assert rules(new={"t"}) == ("low", ["acts only on tables created earlier in this runbook (new, empty)"])
    assert rules(heavy=[], blocks="reads and writes", exclusive=["t"]) == (
        "medium",
        [
            "AccessExclusiveLock on a big table (t): apply's lock timeout bounds the wait for it, not how long it is "
            "held"
        ],
    )
    assert rules(heavy=[], blocks="reads and writes", exclusive=["t"], sizes={"t": SMALL})[0] == "low"
    assert rules(blocks=None)[0] == "medium"
    # A foreign key checked: it reads through the (empty) referencing table, the big one is only locked.
    assert rules(tables=["t", "u"], worked=["u"], sizes={"t": BIG, "u": EMPTY}) == (
        "low",
        ["reads every row", "on empty tables: u (0 rows, 8.0 kB)"],
    )


def test_thresholds_decide_big() -> None:
    """The same statement on the same table is high or medium by --big-rows / --big-bytes."""
    sizes = {"t": TableSize(rows=3000, bytes=300_000)}
    assert rules(sizes=sizes)[0] == "medium"
    assert rules(sizes=sizes, thresholds=Thresholds(big_rows=1000))[0] == "high"
    assert rules(sizes=sizes, thresholds=Thresholds(big_bytes=parse_size("200kB")))[0] == "high"
    assert rules(sizes={"t": TableSize(rows=None, bytes=300_000)})[-1][-1] == (
        "row count unknown (never analysed), taken as not empty: t"
    )


def test_sizes_parse_in_units_of_1024() -> None:
    """100MB, 1.5GB, 512kB, bare bytes; anything else is refused."""
    assert [parse_size(s) for s in ("100MB", "1.5GB", "512kB", "4096")] == [104857600, 1610612736, 524288, 4096]
    with pytest.raises(ValueError, match="'lots' is not a size"):
        parse_size("lots")


def test_an_atomic_block_holds_earlier_locks_until_commit() -> None:
    """The backfill after an ADD COLUMN blocks reads too: statement 1's AccessExclusiveLock is
    held until COMMIT. The non-atomic index build has no marker: not observed, inferred (its
    text says CONCURRENTLY: ShareUpdateExclusiveLock, which blocks no writes)."""
    runbook = postgresql_runbook()
    block = runbook.blocks[0]
    block.items[4] = replace(block.items[4], observed=observed(("shop_book", "AccessExclusiveLock")))
    block.items[5] = replace(block.items[5], observed=observed(("shop_book", "RowExclusiveLock"), scan=True))
    reviews = assess_runbook(runbook, facts=PG, sizes={"shop_book": BIG}, thresholds=Thresholds())
    backfill = reviews[(0, 2)]
    assert (backfill.sql, backfill.blocks, backfill.risk) == (BACKFILL, "reads and writes", "high")
    assert backfill.reasons == [
        "holds AccessExclusiveLock on shop_book, taken by statement 1, until COMMIT",
        "locks the rows it changes until its transaction ends",
        "reads every row",
        "blocks reads and writes on a big table: shop_book (200,000 rows, 50 MB)",
    ]
    index = reviews[(1, 1)]
    assert (index.observed, index.blocks, index.risk, index.scan) == (False, "none", "medium", True)
    assert index.reasons == [
        "not observed on the scratch copy",
        "takes ShareUpdateExclusiveLock on shop_book (from its text)",
        "reads every row (from its text)",
        "online, but works through a big table: shop_book (200,000 rows, 50 MB)",
    ]
    assert (reviews[(0, 3)].kind, reviews[(0, 3)].risk) == ("record", "low")


def test_a_table_created_earlier_is_new_unless_its_block_is_applied() -> None:
    """CREATE TABLE then an index on it: low (new, empty); once that block is applied, the
    live size counts."""
    create = Step(kind="schema", sql='CREATE TABLE "shop_tag" ("id" bigint NOT NULL PRIMARY KEY);', op=0)
    index = Step(kind="schema", sql='CREATE INDEX "shop_tag_id" ON "shop_tag" ("id");', op=1)
    block = Block(kind="migration", atomic=False, migration="shop.0004_tag", items=[create, index, record("0004_tag")])
    runbook = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block])
    fresh = assess_runbook(runbook, facts=PG, sizes={"shop_tag": BIG}, thresholds=Thresholds())
    assert (fresh[(0, 2)].risk, fresh[(0, 2)].new_tables) == ("low", ["shop_tag"])
    done = assess_runbook(
        runbook, facts=PG, sizes={"shop_tag": BIG}, thresholds=Thresholds(), applied=lambda block, index: True
    )
    assert (done[(0, 2)].risk, done[(0, 2)].new_tables, done[(0, 2)].applied) == ("high", [], True)


def test_a_table_filled_only_from_new_tables_stays_new() -> None:
    """Django's rename of a many-to-many table (django-cms 0032 on SQLite): the new table is
    filled from one this runbook made, so it is still empty; filled from a table that was
    already there, it is not."""
    create = Step(kind="schema", sql='CREATE TABLE "shop_old" ("id" integer NOT NULL PRIMARY KEY);', op=0)
    moved = Step(kind="schema", sql='CREATE TABLE "shop_new" ("id" integer NOT NULL PRIMARY KEY);', op=1)
    copy = Step(kind="schema", sql='INSERT INTO "shop_new" (id) SELECT id FROM "shop_old";', op=1)
    index = Step(kind="schema", sql='CREATE INDEX "shop_new_id" ON "shop_new" ("id");', op=1)
    steps = [create, moved, copy, index]
    block = Block(kind="migration", atomic=False, migration="shop.0004_new", items=[*steps, record("0004_new")])
    runbook = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block])
    reviews = assess_runbook(runbook, facts=PG, sizes={}, thresholds=Thresholds())
    assert (reviews[(0, 4)].risk, reviews[(0, 4)].new_tables) == ("low", ["shop_new"])
    block.items[0] = replace(create, sql='CREATE TABLE "shop_other" ("id" integer NOT NULL PRIMARY KEY);')
    reviews = assess_runbook(runbook, facts=PG, sizes={"shop_old": BIG}, thresholds=Thresholds())
    assert (reviews[(0, 4)].risk, reviews[(0, 4)].new_tables) == ("medium", [])


def test_scans_from_the_text() -> None:
    """Index builds (MariaDB's ADD INDEX too), validation, SET NOT NULL, type changes, INSERT …
    SELECT, UPDATE and DELETE (whether their WHERE is served by an index, the text cannot say):
    as the rehearsal infers them."""
    assert scans('CREATE UNIQUE INDEX "i" ON "t" ("a");')
    assert scans('ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL;')
    assert scans('ALTER TABLE "t" ADD CONSTRAINT "c" FOREIGN KEY ("a") REFERENCES "u" ("id");')
    assert not scans('ALTER TABLE "t" ADD CONSTRAINT "c" FOREIGN KEY ("a") REFERENCES "u" ("id") NOT VALID;')
    assert scans('ALTER TABLE "t" ALTER COLUMN "id" TYPE bigint USING "id"::bigint;')
    assert scans('UPDATE "t" SET "a" = 1 WHERE "a" IS NULL;')
    assert scans("ALTER TABLE `t` ADD INDEX `t_a` (`a`);")
    assert not scans('ALTER TABLE "t" ADD CONSTRAINT "c" CHECK ("a" > 0) NOT VALID;')
    assert not scans('ALTER TABLE "t" ADD COLUMN "a" integer NULL;')


def test_safer_forms() -> None:
    """PostgreSQL's online forms, MariaDB's pt-online-schema-change for a COPY."""
    assert PG.safer('CREATE INDEX "i" ON "t" ("a");', None) == (
        "CREATE INDEX CONCURRENTLY (blocks no writes; in a non-atomic migration, e.g. Django's AddIndexConcurrently)"
    )
    assert PG.safer('CREATE INDEX CONCURRENTLY "i" ON "t" ("a");', None) is None
    assert PG.safer('ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE ("a");', None) == (
        "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX"
    )
    assert PG.safer('ALTER TABLE "t" ADD CONSTRAINT "c" CHECK ("a" > 0);', None) == (
        "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in a later transaction (blocks no writes)"
    )
    assert PG.safer('ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL;', None) == (
        'a CHECK ("a" IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL (PostgreSQL 12+ then skips '
        "the scan)"
    )
    assert REVIEW_FACTS["mysql"].safer("ALTER TABLE `t` MODIFY `a` bigint;", {"algorithm": "COPY"}) == (
        "pt-online-schema-change (or gh-ost): copies the table in chunks while writes go on"
    )


def pg_block(migration: str, *sqls: str) -> Block:
    steps: list[Any] = [Step(kind="schema", sql=sql, op=0) for sql in sqls]
    return Block(
        kind="migration", atomic=True, migration=migration, items=[Control("BEGIN;"), *steps, Control("COMMIT;")]
    )


def test_the_key_change_note_names_the_bigint_rewrite_and_the_foreign_keys_that_follow() -> None:
    """What byhand sql notes up front is read back and put on each statement it concerns."""
    change = "shop.0008_author_bigautofield: shop_author.id AutoField -> BigAutoField: altered: shop_book, shop_author"
    block = pg_block(
        "shop.0008_author_bigautofield",
        'ALTER TABLE "shop_author" ALTER COLUMN "id" TYPE bigint USING "id"::bigint;',
        'ALTER TABLE "shop_book" ALTER COLUMN "author_id" TYPE bigint USING "author_id"::bigint;',
        'ALTER TABLE "shop_tag" ADD COLUMN "x" integer NULL;',
    )
    runbook = Runbook(
        header={"direction": "forwards", "vendor": "postgresql"},
        preamble=[Comment(f"-- NOTE: {KEY_CHANGE_NOTE}:"), Comment(f"--   {change}")],
        blocks=[block],
    )
    hazards = find_hazards(block, changes=key_changes(runbook))
    assert sorted(hazards) == [1, 2]
    assert [h.as_dict() for h in hazards[2]] == [
        {
            "name": "bigint-key",
            "tables": ["shop_book"],
            "text": "primary key type change shop_author.id AutoField -> BigAutoField: alters shop_book (the foreign "
            "keys that follow it: shop_book)",
        }
    ]


def test_a_bigint_key_without_the_note_is_inferred_from_the_column_name() -> None:
    """An older runbook: TYPE bigint on "id" or "…_id" is flagged, said to be inferred."""
    block = pg_block("shop.0008_x", 'ALTER TABLE "shop_book" ALTER COLUMN "author_id" TYPE bigint;')
    [hazard] = find_hazards(block, changes=[])[1]
    assert (hazard.name, hazard.tables) == ("bigint-key", ["shop_book"])


def test_a_foreign_key_dropped_and_created_again_is_flagged() -> None:
    """AlterField on a ForeignKey: DROP CONSTRAINT …_fk_… then ADD … FOREIGN KEY on the same table."""
    block = pg_block(
        "shop.0009_fk",
        'ALTER TABLE "shop_book" DROP CONSTRAINT "shop_book_author_id_fk_shop_author_id";',
        'ALTER TABLE "shop_book" ALTER COLUMN "author_id" DROP NOT NULL;',
        'ALTER TABLE "shop_book" ADD CONSTRAINT "shop_book_author_id_fk_shop_author_id" FOREIGN KEY ("author_id") '
        'REFERENCES "shop_author" ("id") DEFERRABLE INITIALLY DEFERRED;',
    )
    [hazard] = find_hazards(block, changes=[])[3]
    assert hazard.as_dict() == {
        "name": "fk-recreated",
        "tables": ["shop_book", "shop_author"],
        "text": "a foreign key of shop_book dropped at statement 1 and created again (Django's AlterField on a "
        "ForeignKey): creating it checks every row of shop_book against shop_author",
    }


def test_rename_model_names_the_related_tables_it_alters() -> None:
    """RenameModel's statements on other tables than the renamed one."""
    block = pg_block(
        "shop.0005_rename",
        'ALTER TABLE "shop_publisher" RENAME TO "shop_imprint";',
        'ALTER TABLE "shop_book" DROP CONSTRAINT "shop_book_publisher_id_fk";',
    )
    block.items.insert(1, Comment("-- Rename model Publisher to Imprint"))
    hazards = find_hazards(block, changes=[])
    assert list(hazards) == [2]
    assert [(h.name, h.tables) for h in hazards[2]] == [("rename-model", ["shop_book"])]


def test_squawk_rules_land_on_their_statements() -> None:
    """The real squawk, once over the runbook: a plain CREATE INDEX (statement 2 of the first
    block) gets require-concurrent-index-creation; nothing else does."""
    if find_squawk() is None:
        pytest.fail("squawk is not installed: it is in the test extra (pip install -e '.[test]')")
    block = pg_block(
        "shop.0004_x",
        'ALTER TABLE "shop_book" ADD COLUMN "n" text NULL;',
        'CREATE INDEX "shop_book_n"\n    ON "shop_book" ("n");',
    )
    runbook = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block])
    report = run_squawk(runbook, pg_version="16")
    assert report.findings == {(0, 2): ["require-concurrent-index-creation"]}
    assert report.note.startswith("squawk ") and "rules left out" in report.note


def test_squawk_that_cannot_run_is_said() -> None:
    """An executable that is not there: a note, no error."""
    runbook = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[pg_block("a.b", "SELECT 1;")])
    report = run_squawk(runbook, pg_version=None, executable="/nonexistent/squawk")
    assert report.note.startswith("squawk did not run: ") and report.findings == {}


def test_the_terminal_table_marks_risky_statements() -> None:
    """Per migration, a line per statement; high marked !!, medium !, each followed by why,
    its safer form and squawk's rules; manual steps listed."""
    runbook = postgresql_runbook()
    block = runbook.blocks[0]
    block.items[4] = replace(block.items[4], observed=observed(("shop_book", "AccessExclusiveLock")))
    block.items[5] = replace(block.items[5], observed=observed(("shop_book", "RowExclusiveLock"), scan=True))
    thresholds = Thresholds(big_rows=1000)
    reviews = assess_runbook(runbook, facts=PG, sizes={"shop_book": TableSize(3000, 250_000)}, thresholds=thresholds)
    reviews[(1, 1)].squawk = ["require-timeout-settings"]
    migrations = [
        MigrationReview(
            b.migration or "", "pending", b.atomic, [r for (p, _), r in reviews.items() if p == n], ["operation 1: x.y"]
        )
        for n, b in enumerate(runbook.blocks)
    ]
    header = {
        "checksum": "c0ffee",
        "direction": "forwards",
        "vendor": "postgresql",
        "database": "postgresql://db",
        "server_version": "16.4",
        "sizes": "live",
        "squawk": "squawk 2",
        "thresholds": {"big_rows": 1000, "big_bytes": 1024},
    }
    text = format_review(Review(header, migrations), title="byhand review of r.sql")
    assert text.splitlines()[:7] == [
        "byhand review of r.sql",
        "  forwards runbook sha256:c0ffee, postgresql 16.4 at postgresql://db",
        "  big table: at least 1,000 rows or 1.0 kB (--big-rows, --big-bytes)",
        "  sizes read live: live",
        "  squawk: squawk 2",
        "  risk of the statements still to run: 1 high, 2 medium, 2 low",
        "",
    ]
    assert text.splitlines()[8:12] == [
        "       # risk   blocks                  rows      size  tables                   statement",
        '  !    1 MEDIUM reads and writes       3,000    244 kB  shop_book                ALTER TABLE "shop_book" ADD '
        'COLUMN "isbn" varchar(13) NULL;',
        "          why: AccessExclusiveLock on a big table (shop_book): apply's lock timeout bounds the wait for it, "
        "not how long it is held",
        '  !!   2 HIGH   reads and writes       3,000    244 kB  shop_book                UPDATE "shop_book" SET '
        "\"isbn\" = '';",
    ]
    assert "          squawk: require-timeout-settings" in text
    assert text.endswith("          MANUAL STEP operation 1: x.y (runs Python: not reviewed)\n")


@pytest.mark.parametrize(
    ("lock", "said"),
    [
        ({"table": "shop_book", "mode": "FooLock"}, "FooLock on shop_book: a lock mode byhand does not know"),
        ({"table": "shop_book"}, "a lock with no mode on shop_book"),
    ],
    ids=["unknown-mode", "no-mode"],
)
def test_a_lock_mode_byhand_does_not_know_blocks_what_is_unknown(lock: dict[str, str], said: str) -> None:
    """A hand-edited "mode" (or none, in a runbook built in code: parsing refuses that one) is
    no lock that blocks nothing: what it blocks is unknown, medium at least, and the reason
    says why; the statement after it in the transaction holds it, unknown too."""
    runbook = postgresql_runbook()
    block = runbook.blocks[0]
    locks = {"tables": ["shop_book"], "locks": [lock], "rewrites": [], "scan": False}
    block.items[4] = replace(block.items[4], observed=locks)
    block.items[5] = replace(block.items[5], observed=observed(("shop_book", "RowExclusiveLock")))
    reviews = assess_runbook(runbook, facts=PG, sizes={"shop_book": SMALL}, thresholds=Thresholds())
    alter, backfill = reviews[(0, 1)], reviews[(0, 2)]
    assert (alter.blocks, alter.risk) == (None, "medium")
    assert alter.reasons == [said, "what it blocks is unknown: shop_book (40 rows, 16 kB)"]
    assert (backfill.blocks, backfill.risk) == (None, "medium")
    held, _, why = said.partition(": ")
    assert backfill.reasons == [
        f"holds {held}, taken by statement 1, until COMMIT" + (f": {why}" if why else ""),
        "locks the rows it changes until its transaction ends",
        "what it blocks is unknown: shop_book (40 rows, 16 kB)",
    ]
    # What the others block is a floor: a backfill that reads every row of a big table is high.
    block.items[5] = replace(block.items[5], observed=observed(("shop_book", "RowExclusiveLock"), scan=True))
    reviews = assess_runbook(runbook, facts=PG, sizes={"shop_book": BIG}, thresholds=Thresholds())
    assert (reviews[(0, 2)].blocks, reviews[(0, 2)].risk) == (None, "high")
    # Beside a lock known to block reads and writes, it blocks no more than everything.
    both = {**locks, "locks": [lock, {"table": "shop_book", "mode": "AccessExclusiveLock"}]}
    assert PG.blocks(both) == ("reads and writes", [said])


def not_observed(sql: str, *, vendor: str = "postgresql", index_tables: dict[str, str] | None = None) -> Any:
    """The review of ``sql``, a statement the rehearsal did not observe, alone in a block, on
    big tables."""
    block = Block(kind="migration", atomic=False, migration="shop.0009_x", items=[Step(kind="schema", sql=sql, op=0)])
    runbook = Runbook(header={"direction": "forwards", "vendor": vendor}, blocks=[block])
    sizes = {name: BIG for name in ("t", "u", "shop_book")}
    facts = REVIEW_FACTS[vendor]
    given = {} if index_tables is None else {"index_tables": index_tables}
    return assess_runbook(runbook, facts=facts, sizes=sizes, thresholds=Thresholds(), **given)[(0, 1)]


@pytest.mark.parametrize(
    ("sql", "blocks", "said"),
    [
        ('CREATE INDEX "i" ON "t" ("a");', "writes", "ShareLock on t"),
        ('CREATE UNIQUE INDEX "i" ON "t" ("a");', "writes", "ShareLock on t"),
        ('CREATE INDEX CONCURRENTLY "i" ON "t" ("a");', "none", "ShareUpdateExclusiveLock on t"),
        ('ALTER TABLE "t" ADD COLUMN "a" integer NULL;', "reads and writes", "AccessExclusiveLock on t"),
        (
            'ALTER TABLE "t" ADD CONSTRAINT "f" FOREIGN KEY ("u_id") REFERENCES "u" ("id") DEFERRABLE INITIALLY '
            "DEFERRED;",
            "writes",
            "ShareRowExclusiveLock on t, u",
        ),
        ('ALTER TABLE "t" ADD FOREIGN KEY ("u_id") REFERENCES "u" ("id");', "writes", "ShareRowExclusiveLock on t, u"),
        ('ALTER TABLE "t" VALIDATE CONSTRAINT "f";', "none", "ShareUpdateExclusiveLock on t"),
        ('ALTER TABLE "t" ALTER COLUMN "a" SET STATISTICS 500;', "none", "ShareUpdateExclusiveLock on t"),
        (
            'ALTER TABLE "t" ADD COLUMN "u_id" bigint NULL REFERENCES "u" ("id"), VALIDATE CONSTRAINT "f";',
            "reads and writes",
            "AccessExclusiveLock on t; ShareRowExclusiveLock on u",
        ),
        ('LOCK TABLE "t" IN SHARE MODE;', "writes", "ShareLock on t"),
        ("LOCK TABLE t IN ROW EXCLUSIVE MODE NOWAIT;", "none", "RowExclusiveLock on t"),
        ('LOCK "t";', "reads and writes", "AccessExclusiveLock on t"),
        ('DROP INDEX "shop_book_i";', "reads and writes", "AccessExclusiveLock on shop_book"),
        ('DROP INDEX CONCURRENTLY IF EXISTS "shop_book_i";', "none", "ShareUpdateExclusiveLock on shop_book"),
    ],
)
def test_a_postgresql_statement_not_observed_locks_what_its_text_says(sql: str, blocks: str, said: str) -> None:
    """Not observed, the lock its text asks for is a floor: what it blocks, and the reasons
    say it comes from its text (a DROP INDEX's table as the database names it)."""
    review = not_observed(sql, index_tables={"shop_book_i": "shop_book"})
    assert review.blocks == blocks
    assert f"takes {said} (from its text)" in review.reasons, review.reasons


def test_a_big_index_build_not_observed_is_high_from_its_text() -> None:
    """CREATE INDEX on a big table in a runbook written without observations: ShareLock from
    its text, so it blocks writes while it reads every row: high."""
    review = not_observed('CREATE INDEX "i" ON "shop_book" ("title");')
    assert (review.observed, review.blocks, review.risk) == (False, "writes", "high")
    assert review.reasons == [
        "not observed on the scratch copy",
        "takes ShareLock on shop_book (from its text)",
        "reads every row (from its text)",
        "blocks writes on a big table: shop_book (200,000 rows, 50 MB)",
    ]
    assert not_observed('SELECT 1 FROM "t";').blocks is None  # its text says nothing


@pytest.mark.parametrize(
    ("sql", "blocks", "risk", "said"),
    [
        ("ALTER TABLE `t` ADD COLUMN `a` int NULL, ALGORITHM=COPY;", "writes", "high", "ALGORITHM=COPY, LOCK=SHARED"),
        (
            "CREATE INDEX `i` ON `t` (`a`) ALGORITHM=INPLACE LOCK=NONE;",
            "none",
            "medium",
            "ALGORITHM=INPLACE, LOCK=NONE",
        ),
        ("CREATE INDEX `i` ON `t` (`a`) LOCK=SHARED;", "writes", "high", "LOCK=SHARED"),
        ("ALTER TABLE `t` ADD COLUMN `a` int NULL, LOCK = EXCLUSIVE;", "reads and writes", "medium", None),
        ("ALTER TABLE `t` ADD COLUMN `a` int NULL;", None, "medium", None),
    ],
)
def test_a_mariadb_statement_not_observed_uses_the_algorithm_and_lock_it_asks_for(
    sql: str, blocks: str | None, risk: str, said: str | None
) -> None:
    """ALGORITHM=COPY rewrites its table and blocks writes; LOCK=NONE, SHARED, EXCLUSIVE say
    what it blocks; a statement that asks for neither blocks what is unknown."""
    review = not_observed(sql, vendor="mysql")
    assert (review.blocks, review.risk) == (blocks, risk), review.reasons
    if said:
        assert f"{said} (from its text)" in review.reasons, review.reasons
    assert review.rewrites == (["t"] if "COPY" in sql else [])


FORGED = {"tables": [], "locks": [], "rewrites": [], "scan": False}
SIGNED = [{"by": "mallory@host", "at": "2026-12-01T03:00:00+00:00", "was": "c0ffee"}]


def test_a_re_signed_runbook_is_judged_at_least_by_what_its_text_says() -> None:
    """Someone wrote "locks": [] (and no tables, no scan) onto a CREATE INDEX and re-signed
    the runbook: its observations are not byhand's own, so its text is the floor (the table
    it names, a ShareLock, a scan: high on a big table). Unsigned, the same is trusted."""
    index = Step(kind="schema", sql='CREATE INDEX "i" ON "shop_book" ("title");', op=0, observed=FORGED)
    block = Block(kind="migration", atomic=False, migration="shop.0009_x", items=[index])
    header: dict[str, Any] = {"direction": "forwards", "vendor": "postgresql"}
    sizes = {"shop_book": BIG}
    trusted = assess_runbook(Runbook(header=header, blocks=[block]), facts=PG, sizes=sizes, thresholds=Thresholds())
    assert (trusted[(0, 1)].tables, trusted[(0, 1)].risk) == ([], "low")
    signed = Runbook(header={**header, "signed": SIGNED}, blocks=[block])
    review = assess_runbook(signed, facts=PG, sizes=sizes, thresholds=Thresholds())[(0, 1)]
    assert (review.observed, review.tables, review.blocks, review.scan, review.risk) == (
        True,
        ["shop_book"],
        "writes",
        True,
        "high",
    )
    assert review.reasons == [
        "takes ShareLock on shop_book (from its text)",
        "reads every row",
        "blocks writes on a big table: shop_book (200,000 rows, 50 MB)",
    ]


def test_a_re_signed_runbook_s_forged_tables_do_not_move_the_work_elsewhere() -> None:
    """The forgery names a small table (or an honest edit left the old statement's): the
    statement still works through the table its text names first, and each lock an earlier
    statement holds is named once."""
    forged = {"tables": ["shop_author"], "locks": [], "rewrites": [], "scan": False, "held": []}
    add = Step(kind="schema", sql='ALTER TABLE "shop_book" ADD COLUMN "x" integer NULL;', op=0, observed=forged)
    index = Step(kind="schema", sql='CREATE INDEX "i" ON "shop_book" ("title");', op=1, observed=forged)
    items = [Control("BEGIN;"), add, index, Control("COMMIT;")]
    block = Block(kind="migration", atomic=True, migration="shop.0009_x", items=items)
    signed = Runbook(header={"direction": "forwards", "vendor": "postgresql", "signed": SIGNED}, blocks=[block])
    sizes = {"shop_book": BIG, "shop_author": SMALL}
    review = assess_runbook(signed, facts=PG, sizes=sizes, thresholds=Thresholds())[(0, 2)]
    assert (review.tables, review.risk) == (["shop_book", "shop_author"], "high")
    assert "blocks reads and writes on a big table: shop_book (200,000 rows, 50 MB)" in review.reasons
    assert [(lock["table"], lock["mode"], lock["statement"]) for lock in review.held] == [
        ("shop_book", "AccessExclusiveLock", 1)
    ]


@pytest.mark.parametrize(
    ("sql", "risk", "rewrites"),
    [
        ('VACUUM FULL "shop_book";', "high", ["shop_book"]),
        ('CLUSTER "shop_book" USING "shop_book_pkey";', "high", ["shop_book"]),
        ('REINDEX TABLE "shop_book";', "high", []),
        ('VACUUM "shop_book";', "medium", []),
        ('TRUNCATE "shop_book";', "medium", []),
        ("DO $$ BEGIN EXECUTE 'ALTER TABLE shop_book ALTER COLUMN id TYPE bigint'; END $$;", "medium", []),
    ],
)
def test_maintenance_and_unknown_statements_not_observed(sql: str, risk: str, rewrites: list[str]) -> None:
    """PostgreSQL's maintenance statements name their table and lock by their text (VACUUM
    FULL and CLUSTER rewrite it); a statement whose text names no table is not low."""
    step = Step(kind="schema", sql=sql, op=0)
    block = Block(kind="migration", atomic=False, migration="shop.0009_x", items=[step])
    runbook = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block])
    review = assess_runbook(runbook, facts=PG, sizes={"shop_book": BIG}, thresholds=Thresholds())[(0, 1)]
    assert (review.risk, review.rewrites) == (risk, rewrites), review.reasons
