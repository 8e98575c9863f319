"""markers.py: what a block's marker claims must agree with its SQL; no database."""

from __future__ import annotations

import re

import pytest

from builders import SQLITE_NOW, postgresql_runbook, record, sqlite_runbook
from byhand.exceptions import RunbookFormatError
from byhand.markers import check_block, is_one_select, literals
from byhand.runbook import Read, Step, parse_runbook
from byhand.vendors import get_vendor


def test_a_runbook_as_written_agrees_with_itself() -> None:
    """Every block of the builders' runbooks passes, as parse_runbook checks them."""
    for runbook in (postgresql_runbook(), sqlite_runbook()):
        for block in parse_runbook(runbook.render()).blocks:
            check_block(block, get_vendor(runbook.vendor))


def test_records_that_name_another_migration_than_the_insert_are_refused() -> None:
    """ "records" says shop.0003 while the INSERT records shop.0002: refused, both named."""
    block = postgresql_runbook().blocks[0]
    block.records = [["shop", "0003_title_idx"]]
    with pytest.raises(RunbookFormatError) as caught:
        check_block(block, get_vendor("postgresql"))
    assert str(caught.value).startswith(
        'not a valid byhand runbook: block shop.0002_book_isbn: "records" says shop.0003_title_idx, but its INSERTs '
        "record shop.0002_book_isbn."
    )


def test_an_atomic_flag_that_contradicts_begin_commit_is_refused() -> None:
    """BEGIN/COMMIT around a block whose marker says atomic false."""
    block = postgresql_runbook().blocks[0]
    block.atomic = False
    with pytest.raises(RunbookFormatError, match='its marker says "atomic": false, but BEGIN/COMMIT'):
        check_block(block, get_vendor("postgresql"))


def test_on_mysql_an_atomic_block_has_no_begin() -> None:
    """MySQL's DDL commits by itself: its runbooks put no BEGIN around atomic migrations."""
    block = postgresql_runbook().blocks[0]
    block.items = [item for item in block.items if not isinstance(item, Step) or item.kind != "schema"]
    block.items = [item for item in block.items if getattr(item, "sql", "") not in ("BEGIN;", "COMMIT;")]
    check_block(block, get_vendor("mysql"))
    with pytest.raises(RunbookFormatError, match="no BEGIN/COMMIT stands around it"):
        check_block(block, get_vendor("postgresql"))


def test_a_manual_step_must_name_what_its_comment_names() -> None:
    """The marker's callable is what apply tells the operator to run: it must be the one the reviewer read."""
    block = postgresql_runbook().blocks[1]
    index = next(i for i, item in enumerate(block.items) if isinstance(item, Step) and item.kind == "manual")
    block.items[index] = Step(kind="manual", op=1, callable="shop.migrations.0003_title_idx.drop_everything")
    with pytest.raises(
        RunbookFormatError, match=re.escape("manual step 1 names shop.migrations.0003_title_idx.drop_everything")
    ):
        check_block(block, get_vendor("postgresql"))


def test_deletes_are_read_from_the_delete_of_each_app() -> None:
    """A squash of two apps: one DELETE with a condition per app, each name under its own app."""
    sql = (
        "DELETE FROM \"django_migrations\" WHERE (\"app\" = 'a' AND \"name\" IN ('0001_x', '0002_y')) OR "
        "(\"app\" = 'b' AND \"name\" IN ('0001_it''s'));"
    )
    block = sqlite_runbook().blocks[0]
    block.items = [item for item in block.items if not isinstance(item, Step) or item.kind != "record"]
    block.items.insert(-3, Step(kind="record", sql=sql))
    block.records, block.migration = [], "a.0002_y"
    block.deletes = [["a", "0001_x"], ["a", "0002_y"], ["b", "0001_it's"]]
    check_block(block, get_vendor("sqlite"))
    block.deletes = block.deletes[:2]
    with pytest.raises(
        RunbookFormatError, match=re.escape('"deletes" says a.0001_x, a.0002_y, but its DELETE removes')
    ):
        check_block(block, get_vendor("sqlite"))


@pytest.mark.parametrize(
    ("sql", "escapes", "values"),
    [
        ("VALUES ('it''s', 'x')", False, ["it's", "x"]),
        ("VALUES ('back\\slash', 'y')", False, ["back\\slash", "y"]),
        ("VALUES ('it\\'s', 'back\\\\slash')", True, ["it's", "back\\slash"]),
    ],
)
def test_literals_are_read_as_the_vendor_quotes_them(sql: str, escapes: bool, values: list[str]) -> None:
    """Doubled quotes everywhere; backslash escapes only where the vendor has them (MySQL)."""
    assert literals(sql, backslash_escapes=escapes) == values


def test_the_record_builder_is_what_the_check_reads() -> None:
    """The INSERT the tests build records the app and name given."""
    assert literals(record("0009_x", app="shop", now=SQLITE_NOW).sql, backslash_escapes=False)[:2] == ["shop", "0009_x"]


def _read(query: str, *, op: int | None = 0) -> Read:
    return Read(query=query, rows=[[42]], default="the default m.f() of book.isbn", op=op)


@pytest.mark.parametrize(
    ("query", "vendor", "one_select"),
    [
        ("SELECT id FROM catalog_domain WHERE name = 'default'", "postgresql", True),
        ("select \"id\" FROM d WHERE n = 'a; b -- c /* d $$'", "postgresql", True),
        ("SELECT id FROM d WHERE n = E'it\\'s; x'", "postgresql", True),
        ("SELECT id FROM d WHERE n = 'a\\'; DROP TABLE d; --'", "mysql", True),
        ("SELECT 1; COMMIT; DROP TABLE shop_book", "postgresql", False),
        ("SELECT 1 /*!50000 ; DROP TABLE d */", "mysql", False),
        ("SELECT 1 # comment", "mysql", False),
        ("SELECT $$;$$", "postgresql", False),
        ("SELECT 'a\\'; DROP TABLE d; --'", "postgresql", False),
        ("SELECT 'unterminated", "sqlite", False),
        ("DELETE FROM d", "sqlite", False),
        ("WITH x AS (DELETE FROM d RETURNING id) SELECT id FROM x", "postgresql", False),
        ("SELECT id FROM d WHERE n = 'into' AND t = 'for update'", "postgresql", True),
        ("SELECT id FROM d INTO OUTFILE '/tmp/ids'", "mysql", False),
        ("SELECT id INTO new_table FROM d", "postgresql", False),
        ("SELECT id FROM d WHERE n = 'a' FOR UPDATE", "postgresql", False),
        ("SELECT id FROM d FOR NO KEY UPDATE", "postgresql", False),
        ("SELECT id FROM d LOCK IN SHARE MODE", "mysql", False),
    ],
)
def test_a_read_runs_only_as_one_select(query: str, vendor: str, one_select: bool) -> None:
    """apply runs a read marker's query at preflight, --dry-run included: one SELECT, quoted as
    the vendor reads quotes, with no second statement or comment hidden outside the quotes."""
    assert is_one_select(query, get_vendor(vendor)) is one_select


def test_a_re_signed_read_that_is_not_one_select_is_refused() -> None:
    """A read marker edited into a write, or put on an operation without SQL, is refused."""
    block = postgresql_runbook().blocks[0]
    block.items.insert(5, _read("SELECT 1; COMMIT; DROP TABLE shop_book"))
    with pytest.raises(RunbookFormatError) as caught:
        check_block(block, get_vendor("postgresql"))
    assert str(caught.value).startswith(
        "not a valid byhand runbook: block shop.0002_book_isbn: a read marker holds 'SELECT 1; COMMIT; DROP TABLE "
        "shop_book', but apply runs only one SELECT there."
    )
    block.items[5] = _read("SELECT 1", op=7)
    with pytest.raises(RunbookFormatError, match="a read marker is for operation 7, but no statement of that"):
        check_block(block, get_vendor("postgresql"))
    block.items[5] = _read("SELECT 1", op=1)
    check_block(block, get_vendor("postgresql"))
