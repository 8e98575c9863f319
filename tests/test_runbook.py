"""The runbook model: render, parse back, checksum; no database, no Django."""

from __future__ import annotations

import pytest

from byhand.exceptions import RunbookChecksumMismatch, RunbookFormatError
from byhand.runbook import Block, Comment, Control, Runbook, Step, parse_runbook, terminate


def sample() -> Runbook:
    block = Block(kind="migration", atomic=True, migration="shop.0002_x", requires=["shop.0001_initial"])
    block.records = [["shop", "0002_x"]]
    block.items = [
        Control("BEGIN;"),
        Comment("--"),
        Comment("-- Add field x to book"),
        Comment("--"),
        Step(kind="schema", sql='ALTER TABLE "b" ADD COLUMN "x" int;', op=0),
        Step(kind="schema", sql="INSERT INTO t VALUES ('a;b') -- note\n;", op=1),
        Step(kind="manual", op=2, callable="shop.migrations.0002_x.fill"),
        Step(kind="record", sql="INSERT INTO \"django_migrations\" VALUES ('shop', '0002_x', NOW());"),
        Control("COMMIT;"),
    ]
    return Runbook(
        header={"direction": "forwards", "vendor": "postgresql"}, preamble=[Comment("-- Plan")], blocks=[block]
    )


def test_render_then_parse_gives_the_same_runbook() -> None:
    """Parsing what was rendered yields equal blocks and the same text."""
    text = sample().render()
    parsed = parse_runbook(text)
    assert parsed.render() == text
    assert parsed.blocks == sample().blocks
    assert parsed.header == sample().header


def test_multiline_statement_keeps_its_lines() -> None:
    """A statement spanning lines comes back whole, with its own terminator line."""
    steps = parse_runbook(sample().render()).blocks[0].steps
    assert steps[1].sql == "INSERT INTO t VALUES ('a;b') -- note\n;"
    assert [s.kind for s in steps] == ["schema", "schema", "manual", "record"]
    assert steps[2].callable == "shop.migrations.0002_x.fill"


def test_an_edited_runbook_is_refused_with_both_checksums() -> None:
    """Changing one character of the body breaks the checksum."""
    text = sample().render().replace('"x" int', '"x" bigint')
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
    import hashlib

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
