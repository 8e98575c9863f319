"""The runbook model: render, parse back, checksum; no database, no Django."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from builders import postgresql_runbook
from byhand.exceptions import RunbookChecksumMismatch, RunbookFormatError
from byhand.runbook import (
    Comment,
    Read,
    Runbook,
    Step,
    escape_comment,
    has_control_character,
    json_rows,
    observed_comment,
    parse_runbook,
    terminate,
)


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-- Add field isbn to book", "-- Add field isbn to book"),
        ("-- 0004_nl\nSELECT 'INJECTED';--", "-- 0004_nl\\nSELECT 'INJECTED';--"),
        ("-- notes\rCREATE TABLE t (id int);", "-- notes\\rCREATE TABLE t (id int);"),
        ("-- \r\n", "-- \\r\\n"),
        ("-- bell\x07 nul\x00 esc\x1b[31m del\x7f", "-- bell\\x07 nul\\x00 esc\\x1b[31m del\\x7f"),
        ("-- next line\x85 and\u2028 and\u2029", "-- next line\\x85 and\\u2028 and\\u2029"),
        (
            "-- \u202eevil\u202c \u2066x\u2069 \u200e\u200f\u061c",
            "-- \\u202eevil\\u202c \\u2066x\\u2069 \\u200e\\u200f\\u061c",
        ),
        ("--\tSELECT 1", "--\tSELECT 1"),
        ("-- café, 書, C:\\dir\\new", "-- café, 書, C:\\dir\\new"),
    ],
    ids=[
        "plain",
        "LF",
        "CR",
        "CRLF",
        "C0-and-DEL",
        "NEL-LS-PS",
        "bidi-controls",
        "tab-kept",
        "backslash-and-non-ASCII-kept",
    ],
)
def test_escape_comment_writes_control_characters_escaped(text: str, expected: str) -> None:
    """Line breaks and other control characters come out as Python's escapes; the rest is untouched."""
    escaped = escape_comment(text)
    assert escaped == expected
    assert not has_control_character(escaped)
    assert escape_comment(escaped) == escaped  # escaping twice changes nothing


def test_has_control_character_says_what_escape_comment_would_change() -> None:
    """The predicate is true exactly when escaping changes the text; tab is not one, nor a
    joiner or a letter of a right-to-left script; the bidirectional controls are."""
    samples = ["x", "\t", "\n", "\r", "\x00", "\x1f", " ", "~", "\x7f", "\x9f", "\xa0", "\u2028", "é"]
    bidi = ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
    kept = ["\u200b", "\u200d", "\u2060", "\u05d0", "\u0627", "\u202f"]  # zero-width, joiner, Hebrew, Arabic
    samples += bidi + kept
    assert {c: has_control_character(c) for c in samples} == {c: escape_comment(c) != c for c in samples}
    assert [c for c in samples if has_control_character(c)] == [
        "\n",
        "\r",
        "\x00",
        "\x1f",
        "\x7f",
        "\x9f",
        "\u2028",
        *bidi,
    ]


def test_a_comment_with_a_line_break_renders_as_one_comment_line() -> None:
    """A description holding CR and LF: the runbook has no control character, parses back, and the
    line is still one comment."""
    runbook = sample()
    runbook.blocks[0].items.insert(2, Comment("-- Backfill\rDROP TABLE users;\nDELETE FROM t;"))
    text = runbook.render()
    assert not any(has_control_character(line) for line in text.split("\n"))
    assert "-- Backfill\\rDROP TABLE users;\\nDELETE FROM t;\n" in text
    parsed = parse_runbook(text)
    assert parsed.render() == text
    assert Comment("-- Backfill\\rDROP TABLE users;\\nDELETE FROM t;") in parsed.blocks[0].items


@pytest.mark.parametrize("character", ["\r", "\x1b", "\x85", "\u2028", "\u202e"])
def test_a_comment_holding_a_control_character_is_refused(character: str) -> None:
    """A comment line byhand could not have written (a control character in it), even re-signed."""
    body = sample().body().replace("-- Add field isbn to book", f"-- Add field isbn{character}DROP TABLE users;")
    text = body + "-- byhand checksum: sha256:" + hashlib.sha256(body.encode()).hexdigest() + "\n"
    with pytest.raises(RunbookFormatError) as caught:
        parse_runbook(text)
    shown = escape_comment(f"-- Add field isbn{character}DROP TABLE users;")
    assert str(caught.value) == (
        f"not a valid byhand runbook: line 8: a comment holds a control character ({shown!r}), which byhand "
        "never writes (it escapes them); the file was edited by hand."
    )


def _with_read(query: str = "SELECT id FROM d WHERE name = 'caf\u00e9\u2028x'") -> Runbook:
    """The shared runbook with a read marker under its first statement."""
    runbook = postgresql_runbook()
    read = Read(query=query, rows=[[42, "caf\u00e9", None]], default="the default m.f() of book.isbn", op=0)
    runbook.blocks[0].items.insert(5, read)
    return runbook


def test_a_read_marker_renders_as_one_ascii_line_and_parses_back() -> None:
    """The query and rows a default read come back as written; whatever they hold, the marker
    is one comment line of ASCII (no separator an editor would break the line at)."""
    text = _with_read().render()
    (line,) = [line for line in text.splitlines() if line.startswith('-- byhand: {"read"')]
    assert line.isascii()
    assert line == (
        '-- byhand: {"read": "SELECT id FROM d WHERE name = \'caf\\u00e9\\u2028x\'", "rows": [[42, "caf\\u00e9", '
        'null]], "default": "the default m.f() of book.isbn", "op": 0}'
    )
    parsed = parse_runbook(text)
    assert parsed.blocks == _with_read().blocks
    assert parsed.blocks[0].reads == _with_read().blocks[0].reads
    assert parsed.blocks[1].reads == []


def test_a_read_marker_without_its_rows_is_refused() -> None:
    """A marker that does not say what the query gave is not one byhand writes."""
    text = _with_read().render().replace('"rows": [[42, "caf\\u00e9", null]]', '"rows": 42')
    with pytest.raises(RunbookFormatError, match="a read marker's rows must be a list of lists"):
        parse_runbook(text, verify_checksum=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("4.20"), "4.20"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (datetime(2026, 1, 2, 4, 5, tzinfo=timezone(timedelta(hours=1))), "2026-01-02T03:05:00+00:00"),
        (datetime(2026, 1, 2, 3, 5), "2026-01-02T03:05:00"),
        (memoryview(b"\x01\xff"), "\\x01ff"),
        ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
        (float("nan"), "nan"),
        (True, True),
    ],
)
def test_json_rows_gives_values_both_sides_read_alike(value: object, expected: object) -> None:
    """A driver's values as JSON: the same whichever connection read them."""
    assert json_rows([(value,)]) == [[expected]]


def _observed_runbook() -> Runbook:
    runbook = postgresql_runbook()
    observed = {
        "tables": ["shop_book"],
        "locks": [{"table": "shop_book", "mode": "AccessExclusiveLock"}],
        "algorithm": None,
        "lock": None,
        "rewrites": ["shop_book"],
        "scan": True,
    }
    runbook.blocks[0].items.insert(
        5, Step(kind="schema", sql="ALTER TABLE shop_book ALTER a TYPE bigint;", observed=observed)
    )
    return runbook


def test_what_a_statement_did_is_kept_in_its_marker() -> None:
    """A step's "observed" comes back from the file as it was written."""
    text = _observed_runbook().render()
    assert ('-- byhand: {"step": "schema", "op": null, "lines": 1, "observed": {"tables": ["shop_book"]') in text
    parsed = parse_runbook(text)
    assert parsed.render() == text
    assert parsed.blocks == _observed_runbook().blocks
    assert observed_comment(parsed.blocks[0].steps[1].observed or {}) == (
        "-- observed: AccessExclusiveLock on shop_book; rewrites shop_book; reads every row"
    )


def test_an_observed_marker_that_is_no_object_is_refused() -> None:
    """A step's "observed" must be a JSON object (review reads its keys)."""
    text = (
        _observed_runbook()
        .render()
        .replace('"observed": {"tables": ["shop_book"]', '"observed": [{"tables": ["shop_book"]')
    )
    text = text.replace('"scan": true}}', '"scan": true}]}')
    with pytest.raises(RunbookFormatError, match='a step\'s "observed" must be a JSON object'):
        parse_runbook(text, verify_checksum=False)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('"locks": [{"table": "shop_book", "mode": "AccessExclusiveLock"}]', '"locks": "AccessExclusiveLock"'),
        ('"locks": [{"table": "shop_book", "mode": "AccessExclusiveLock"}]', '"locks": [["shop_book"]]'),
        ('"tables": ["shop_book"]', '"tables": [1]'),
        ('"scan": true', '"scan": "yes"'),
    ],
)
def test_an_observed_marker_of_another_shape_is_refused(before: str, after: str) -> None:
    """What review reads must have the shape byhand writes: an edit that changes it is refused."""
    text = _observed_runbook().render()
    assert before in text
    with pytest.raises(RunbookFormatError, match="what byhand never writes there"):
        parse_runbook(text.replace(before, after), verify_checksum=False)
