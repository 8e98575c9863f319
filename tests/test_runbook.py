"""The runbook model: render, parse back, checksum; no database, no Django."""

from __future__ import annotations

import hashlib

import pytest

from builders import postgresql_runbook
from byhand.exceptions import RunbookChecksumMismatch, RunbookFormatError
from byhand.runbook import Runbook, Step, parse_runbook, terminate


def sample() -> Runbook:
    """The shared PostgreSQL runbook, with a statement whose last line holds a comment."""
    runbook = postgresql_runbook()
    noted = Step(kind="schema", sql="INSERT INTO t VALUES ('a;b') -- note\n;", op=1)
    runbook.blocks[0].items.insert(5, noted)
    return runbook


def test_render_then_parse_gives_the_same_runbook() -> None:
    """Parsing what was rendered yields equal blocks and the same text."""
    text = sample().render()
    parsed = parse_runbook(text)
    assert parsed.render() == text
    assert parsed.blocks == sample().blocks
    assert parsed.header == sample().header


def test_multiline_statement_keeps_its_lines() -> None:
    """A statement spanning lines comes back whole, with its own terminator line."""
    blocks = parse_runbook(sample().render()).blocks
    steps = blocks[0].steps
    assert steps[1].sql == "INSERT INTO t VALUES ('a;b') -- note\n;"
    assert steps[2].sql == 'UPDATE "shop_book"\n   SET "isbn" = \'\';'
    assert [s.kind for s in steps] == ["schema", "schema", "schema", "record"]
    assert [s.kind for s in blocks[1].steps] == ["schema", "manual", "record"]
    assert blocks[1].steps[1].callable == "shop.migrations.0003_title_idx.warm_cache"


def test_an_edited_runbook_is_refused_with_both_checksums() -> None:
    """Changing one character of the body breaks the checksum."""
    text = sample().render().replace("varchar(13)", "varchar(14)")
    with pytest.raises(RunbookChecksumMismatch) as caught:
        parse_runbook(text)
    assert caught.value.expected != caught.value.actual
    assert str(caught.value).startswith("the runbook was changed after it was written: its checksum says sha256:")


def test_a_truncated_runbook_is_refused() -> None:
    """Without its last line the file is not taken for a runbook."""
    text = sample().render()
    with pytest.raises(RunbookFormatError) as caught:
        parse_runbook(text[: len(text) // 2])
    assert str(caught.value) == (
        "not a valid byhand runbook: its last line is not '-- byhand checksum: sha256:…' (truncated?)."
    )


def test_sql_outside_a_step_is_refused_even_when_re_signed() -> None:
    """A statement slipped between steps is found although the checksum is recomputed."""
    body = sample().body().replace("COMMIT;", "DROP TABLE users;\nCOMMIT;")
    text = body + "-- byhand checksum: sha256:" + hashlib.sha256(body.encode()).hexdigest() + "\n"
    with pytest.raises(RunbookFormatError, match="SQL outside a step"):
        parse_runbook(text)


def test_plain_sql_file_is_not_a_runbook() -> None:
    """An sqlmigrate output is refused with the reason."""
    text = "BEGIN;\nALTER TABLE x ADD y int;\nCOMMIT;\n-- byhand checksum: sha256:00\n"
    with pytest.raises(RunbookFormatError, match="does not start with"):
        parse_runbook(text, verify_checksum=False)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "SELECT 1;"),
        ("SELECT 1;", "SELECT 1;"),
        ("SELECT 1 -- why", "SELECT 1 -- why\n;"),
        ("SELECT 1;\n-- done", "SELECT 1;\n-- done\n;"),
        ("SELECT '--'", "SELECT '--'\n;"),
        ("SELECT 1  \n", "SELECT 1;"),
    ],
)
def test_terminate_never_lets_a_comment_swallow_the_semicolon(sql: str, expected: str) -> None:
    """The terminator goes on its own line whenever the last line holds '--'."""
    assert terminate(sql) == expected


def test_a_control_statement_of_another_vendor_is_sql_outside_a_step() -> None:
    """PRAGMAs are SQLite's control statements: in a PostgreSQL runbook they are refused."""
    body = sample().body().replace("COMMIT;", "PRAGMA foreign_keys = ON;\nCOMMIT;", 1)
    text = body + "-- byhand checksum: sha256:" + hashlib.sha256(body.encode()).hexdigest() + "\n"
    with pytest.raises(RunbookFormatError, match="SQL outside a step \\('PRAGMA foreign_keys = ON;'\\)"):
        parse_runbook(text)


def test_a_header_naming_an_unknown_vendor_is_refused() -> None:
    """The vendor decides which control statements the runbook may hold: an unknown one is refused."""
    runbook = sample()
    runbook.header["vendor"] = "oracle"
    with pytest.raises(RunbookFormatError, match="its header names no vendor byhand knows \\('oracle'\\)"):
        parse_runbook(runbook.render())
