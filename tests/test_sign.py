"""Re-signing a reviewed runbook: sign_runbook and 'byhand sign' / 'byhand inspect'; no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from builders import BACKFILL, INDEX, postgresql_runbook
from byhand.cli import main
from byhand.exceptions import RunbookFormatError
from byhand.operating.journal import operator
from byhand.runbook import parse_runbook, sign_runbook

BY = "ops@bastion"
AT = "2026-11-25T21:04:07+00:00"
REVIEWED_INDEX = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_book_title_idx" ON "shop_book" ("title");'
SLIPPED = 'DROP TABLE "shop_review";'
WHERE = ' WHERE "isbn" IS NULL;'


def edited() -> str:
    """The sample after a reviewed edit of one statement, same number of lines."""
    text = postgresql_runbook().render()
    assert INDEX in text
    return text.replace(INDEX, REVIEWED_INDEX)


def line_of(text: str, line: str) -> int:
    return text.split("\n").index(line) + 1


# -- sign_runbook -----------------------------------------------------------------------


def test_a_runbook_as_written_signs_to_itself() -> None:
    """Nothing changed: the same text back, and the same checksum twice."""
    text = postgresql_runbook().render()
    assert sign_runbook(text, by=BY, at=AT) == (text, postgresql_runbook().checksum(), postgresql_runbook().checksum())


def test_an_edited_statement_is_signed_with_who_when_and_what_it_replaced() -> None:
    """The header gains a 'signed' entry; the result passes the checksum check with the edit in it."""
    signed, was, now = sign_runbook(edited(), by=BY, at=AT)
    assert was == postgresql_runbook().checksum()
    assert now != was
    parsed = parse_runbook(signed, verify_checksum=True)
    assert parsed.header["signed"] == [{"by": BY, "at": AT, "was": was}]
    assert parsed.checksum() == now
    assert signed.endswith(f"-- byhand checksum: sha256:{now}\n")
    assert parsed.blocks[1].steps[0].sql == REVIEWED_INDEX
    assert parsed.blocks == parse_runbook(edited(), verify_checksum=False).blocks


def test_signing_changes_only_the_header_and_the_checksum_lines() -> None:
    """Every other line of the reviewed file stays as the reviewer saw it."""
    before = edited().split("\n")
    after = sign_runbook(edited(), by=BY, at=AT)[0].split("\n")
    changed = [number for number, (old, new) in enumerate(zip(before, after, strict=True), start=1) if old != new]
    assert changed == [2, len(before) - 1]


def test_a_second_edit_adds_a_second_signature() -> None:
    """Signatures accumulate in order, each naming the checksum it replaced."""
    first, was1, now1 = sign_runbook(edited(), by=BY, at=AT)
    again = first.replace('ADD COLUMN "isbn" varchar(13) NULL', 'ADD COLUMN "isbn" varchar(17) NULL')
    second, was2, now2 = sign_runbook(again, by="dba@bastion", at="2026-11-26T08:00:00+00:00")
    assert was2 == now1
    assert parse_runbook(second).header["signed"] == [
        {"by": BY, "at": AT, "was": was1},
        {"by": "dba@bastion", "at": "2026-11-26T08:00:00+00:00", "was": now1},
    ]
    assert parse_runbook(second).checksum() == now2


def test_a_signed_runbook_signs_to_itself() -> None:
    """Signing the signed text again adds nothing."""
    signed, _was, now = sign_runbook(edited(), by=BY, at=AT)
    assert sign_runbook(signed, by="someone@else", at="2027-01-01T00:00:00+00:00") == (signed, now, now)


def test_sql_added_outside_a_step_is_still_refused() -> None:
    """A statement slipped in before COMMIT has no step marker: signing refuses it."""
    text = edited().replace("COMMIT;", SLIPPED + "\nCOMMIT;")
    with pytest.raises(RunbookFormatError) as caught:
        sign_runbook(text, by=BY, at=AT)
    assert str(caught.value) == (
        f"not a valid byhand runbook: line {line_of(text, SLIPPED)}: SQL outside a step "
        "('DROP TABLE \"shop_review\";'); the file was edited by hand or is not a byhand runbook."
    )


def test_a_statement_that_grew_a_line_without_its_marker_is_refused() -> None:
    """One more line in a two-line statement: its last line falls outside the step and is refused."""
    grown = BACKFILL.replace(";", "") + "\n" + WHERE
    text = edited().replace(BACKFILL, grown)
    with pytest.raises(RunbookFormatError) as caught:
        sign_runbook(text, by=BY, at=AT)
    assert str(caught.value) == (
        f"not a valid byhand runbook: line {line_of(text, WHERE)}: SQL outside a step "
        "(' WHERE \"isbn\" IS NULL;'); the file was edited by hand or is not a byhand runbook."
    )


def test_a_grown_statement_with_its_marker_updated_is_signed() -> None:
    """The reviewer raised "lines" from 2 to 3: the three-line statement is signed as it is."""
    grown = BACKFILL.replace(";", "") + "\n" + WHERE
    text = edited().replace(BACKFILL, grown)
    text = text.replace('{"step": "schema", "op": 1, "lines": 2}', '{"step": "schema", "op": 1, "lines": 3}')
    signed, _was, _now = sign_runbook(text, by=BY, at=AT)
    assert parse_runbook(signed).blocks[0].steps[1].sql == grown


def test_a_truncated_runbook_is_not_signed() -> None:
    """Without its checksum line the file is refused, not signed."""
    text = edited()
    with pytest.raises(RunbookFormatError) as caught:
        sign_runbook(text[: len(text) // 2], by=BY, at=AT)
    assert str(caught.value) == (
        "not a valid byhand runbook: its last line is not '-- byhand checksum: sha256:…' (truncated?)."
    )


# -- byhand sign / byhand inspect -----------------------------------------------------------


def test_byhand_sign_rewrites_the_file_and_a_second_sign_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0, the file re-signed in place by this operator; signing again says so and leaves it."""
    path = tmp_path / "runbook.sql"
    path.write_text(edited(), encoding="utf-8")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert main(["sign", str(path)]) == 0
    signed = parse_runbook(path.read_text(encoding="utf-8"))
    [signature] = signed.header["signed"]
    assert signature["by"] == operator()
    assert signature["was"] == postgresql_runbook().checksum()
    assert before <= datetime.fromisoformat(signature["at"]) <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert capsys.readouterr().out == (
        f"{path}: re-signed by {operator()}: sha256:{signed.checksum()} "
        f"(was sha256:{postgresql_runbook().checksum()}). "
        "apply journals the signature.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runbook.sql"]

    text = path.read_text(encoding="utf-8")
    assert main(["sign", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: the checksum matches already (sha256:{signed.checksum()}); nothing to sign.\n"
    )
    assert path.read_text(encoding="utf-8") == text


def test_byhand_sign_refuses_sql_outside_a_step_and_leaves_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with the reason and the hint about "lines"; the file is not touched."""
    path = tmp_path / "runbook.sql"
    text = edited().replace("COMMIT;", SLIPPED + "\nCOMMIT;")
    path.write_text(text, encoding="utf-8")
    assert main(["sign", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"byhand: {path}: not a valid byhand runbook: line {line_of(text, SLIPPED)}: SQL "
        "outside a step ('DROP TABLE \"shop_review\";'); the file was edited by hand or is not a byhand runbook. "
        'If you added lines to a statement, update the "lines" of its marker.\n'
    )
    assert path.read_text(encoding="utf-8") == text


def test_byhand_sign_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2, 'cannot read', and no file left behind."""
    path = tmp_path / "missing.sql"
    assert main(["sign", str(path)]) == 2
    assert capsys.readouterr().err == f"byhand: cannot read {path}: No such file or directory.\n"
    assert list(tmp_path.iterdir()) == []


def test_byhand_inspect_refuses_the_edit_until_it_is_signed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before signing inspect exits 2 on the checksum; after, it prints the plan with the re-signed line."""
    path = tmp_path / "runbook.sql"
    path.write_text(edited(), encoding="utf-8")
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"byhand: {path}: the runbook was changed after it was written")

    assert main(["sign", str(path)]) == 0
    capsys.readouterr()
    signed = parse_runbook(path.read_text(encoding="utf-8"))
    at = signed.header["signed"][0]["at"]
    assert main(["inspect", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"byhand runbook, forwards, checksum sha256:{signed.checksum()} (verified)\n"
        f"  re-signed by {operator()} at {at} (was sha256:{postgresql_runbook().checksum()})\n"
        "  for postgresql 16.4 (database alias 'default'), Django 5.2.8, generated 2026-11-25T20:58:00Z\n"
        "  against schema sha256:5d41402abc4b2a76b9719d911017c592\n"
        "  settings: DEFAULT_AUTO_FIELD=django.db.models.BigAutoField, USE_TZ=True, TIME_ZONE=UTC\n"
        "2 migration(s):\n"
        "  shop.0002_book_isbn                                atomic       3 statement(s)\n"
        "      records: shop.0002_book_isbn\n"
        "      requires: shop.0001_initial\n"
        "  shop.0003_title_idx                                NOT atomic   2 statement(s)\n"
        "      records: shop.0003_title_idx\n"
        "      requires: shop.0002_book_isbn\n"
        "      MANUAL STEP (operation 1): shop.migrations.0003_title_idx.warm_cache\n"
    )


def test_byhand_sign_with_the_original_prints_what_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--original: a unified diff of the edit against the runbook it replaces; another file is refused."""
    original = tmp_path / "original.sql"
    original.write_text(postgresql_runbook().render(), encoding="utf-8")
    path = tmp_path / "runbook.sql"
    path.write_text(edited(), encoding="utf-8")
    other = tmp_path / "other.sql"
    another = postgresql_runbook()
    another.header["generated_at"] = "2026-11-26T00:00:00Z"
    other.write_text(another.render(), encoding="utf-8")
    assert main(["sign", str(path), "--original", str(other)]) == 2
    assert f"{other} is not the runbook {path} replaces" in capsys.readouterr().err
    assert main(["sign", str(path), "--original", str(original)]) == 0
    diff = capsys.readouterr().out
    assert f"-{INDEX}\n+{REVIEWED_INDEX}\n" in diff
    assert [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        f"-{INDEX}",
        f"+{REVIEWED_INDEX}",
    ]
