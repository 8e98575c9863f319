"""apply's arguments, retry backoff and every refusal that needs no server (SQLite in a temp file at most)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from builders import postgresql_runbook, sqlite_runbook
from byhand.cli import main
from byhand.console import add_apply_arguments, apply_options, parse_duration
from byhand.exceptions import ExitStatus
from byhand.operating.applying import DEFAULT_LOCK_TIMEOUT, ApplyOptions
from byhand.operating.assessing import Thresholds

KNOWN = "use one of postgres://, postgresql://, pgsql://, mysql://, mariadb://, sqlite://"

# -- parse_duration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100ms", timedelta(milliseconds=100)),
        ("250ms", timedelta(milliseconds=250)),
        ("2s", timedelta(seconds=2)),
        ("1.5m", timedelta(seconds=90)),
        ("1h", timedelta(hours=1)),
        ("2", timedelta(seconds=2)),
        ("0.5", timedelta(milliseconds=500)),
        ("0", timedelta(0)),
        (" 10 s ", timedelta(seconds=10)),
    ],
)
def test_durations_take_a_unit_or_mean_seconds(text: str, expected: timedelta) -> None:
    """ms, s, m, h; a bare number is seconds; spaces around are allowed."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5x", "2 hours", "-1s", "1.5.2s", "ms", "1e3", "2S", ".5s", "1d"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    """Unknown units, signs, exponents and empty text are refused with examples."""
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{text!r} is not a duration (examples: 100ms, 2s, 5m)"


# -- apply's options --------------------------------------------------------------------------


def apply_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byhand apply")
    add_apply_arguments(parser)
    return parser


def test_apply_defaults() -> None:
    """100 ms lock timeout, 20 attempts within 10 min, no cancelling, the default journal."""
    args = apply_parser().parse_args(["runbook.sql"])
    assert vars(args) == {
        "runbook": Path("runbook.sql"),
        "dry_run": False,
        "lock_timeout": DEFAULT_LOCK_TIMEOUT,
        "statement_timeout": None,
        "concurrent_lock_timeout": None,
        "max_attempts": 20,
        "max_wait": timedelta(minutes=10),
        "cancel_blockers_after": None,
        "terminate_idle_after": timedelta(seconds=10),
        "manual_step_done": [],
        "skip_manual_steps": False,
        "journal_table": "byhand_journal",
        "run_lock_wait": timedelta(seconds=5),
        "json": False,
        "full_blocker_queries": False,
        "allow_session_pooler": False,
        "refuse_risk": None,
        "big_rows": 100_000,
        "big_bytes": 100 * 1024 * 1024,
        "pt_osc_chunk_size": 500,
        "pt_osc_sleep": 0.1,
        "pt_osc_max_load": "Threads_running=25",
        "pt_osc_critical_load": "Threads_running=50",
    }
    assert DEFAULT_LOCK_TIMEOUT == timedelta(milliseconds=100)


def test_apply_options_as_given() -> None:
    """Durations parsed, counts as integers, --manual-step-done repeatable."""
    args = apply_parser().parse_args(
        [
            "runbook.sql",
            "--dry-run",
            "--lock-timeout",
            "2s",
            "--statement-timeout",
            "1h",
            "--max-attempts",
            "5",
            "--max-wait",
            "1.5m",
            "--cancel-blockers-after",
            "3",
            "--terminate-idle-after",
            "30s",
            "--manual-step-done",
            "shop.0003_review:1",
            "--manual-step-done",
            "blog.0002_backfill:0",
            "--skip-manual-steps",
            "--journal-table",
            "ops_byhand_journal",
            "--json",
            "--refuse-risk",
            "medium",
            "--big-rows",
            "5000",
            "--big-bytes",
            "1.5GB",
            "--pt-osc-chunk-size",
            "200",
            "--pt-osc-sleep",
            "0",
            "--pt-osc-max-load",
            "Threads_running=10,Threads_connected:300",
            "--pt-osc-critical-load",
            "Threads_running=40",
        ]
    )
    assert vars(args) == {
        "runbook": Path("runbook.sql"),
        "dry_run": True,
        "lock_timeout": timedelta(seconds=2),
        "statement_timeout": timedelta(hours=1),
        "concurrent_lock_timeout": None,
        "max_attempts": 5,
        "max_wait": timedelta(seconds=90),
        "cancel_blockers_after": 3,
        "terminate_idle_after": timedelta(seconds=30),
        "manual_step_done": ["shop.0003_review:1", "blog.0002_backfill:0"],
        "skip_manual_steps": True,
        "journal_table": "ops_byhand_journal",
        "run_lock_wait": timedelta(seconds=5),
        "json": True,
        "full_blocker_queries": False,
        "allow_session_pooler": False,
        "refuse_risk": "medium",
        "big_rows": 5000,
        "big_bytes": 1610612736,
        "pt_osc_chunk_size": 200,
        "pt_osc_sleep": 0.0,
        "pt_osc_max_load": "Threads_running=10,Threads_connected:300",
        "pt_osc_critical_load": "Threads_running=40",
    }


def test_parsed_arguments_become_the_same_apply_options() -> None:
    """apply_options (shared by both front ends) carries every option over, unchanged."""
    args = apply_parser().parse_args(
        ["runbook.sql", "--max-attempts", "5", "--manual-step-done", "shop.0003_review:1", "--dry-run"]
    )
    assert apply_options(vars(args)) == ApplyOptions(
        max_attempts=5, manual_steps_done=frozenset({"shop.0003_review:1"}), dry_run=True
    )
    assert apply_options(vars(apply_parser().parse_args(["runbook.sql"]))) == ApplyOptions()
    gate = apply_parser().parse_args(["runbook.sql", "--refuse-risk", "high", "--big-rows", "10", "--big-bytes", "1MB"])
    assert apply_options(vars(gate)) == ApplyOptions(
        refuse_risk="high", thresholds=Thresholds(big_rows=10, big_bytes=1024 * 1024)
    )


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--lock-timeout", "5x"], "argument --lock-timeout: '5x' is not a duration (examples: 100ms, 2s, 5m)"),
        (["--max-wait", "soon"], "argument --max-wait: 'soon' is not a duration (examples: 100ms, 2s, 5m)"),
        (["--max-attempts", "0"], "argument --max-attempts: '0' is not a whole number ≥ 1"),
        (["--max-attempts", "-2"], "argument --max-attempts: '-2' is not a whole number ≥ 1"),
        (["--cancel-blockers-after", "1.5"], "argument --cancel-blockers-after: '1.5' is not a whole number ≥ 1"),
        (["--big-rows", "0"], "argument --big-rows: '0' is not a whole number ≥ 1"),
        (["--big-bytes", "0"], "argument --big-bytes: '0' is not a size above 0"),
        (["--big-bytes", "0.0001kB"], "argument --big-bytes: '0.0001kB' is not a size above 0"),
        (["--pt-osc-chunk-size", "0"], "argument --pt-osc-chunk-size: '0' is not a whole number ≥ 1"),
        (["--pt-osc-sleep", "-1"], "argument --pt-osc-sleep: '-1' is not a number of seconds from 0 to 60"),
        (["--pt-osc-sleep", "nan"], "argument --pt-osc-sleep: 'nan' is not a number of seconds from 0 to 60"),
        (
            ["--pt-osc-max-load", "25"],
            "argument --pt-osc-max-load: '25' is not VAR=N[,VAR=N…] (a status variable and a number)",
        ),
    ],
)
def test_bad_option_values_exit_2_naming_the_option(
    arguments: list[str], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses the value before anything is read or connected."""
    with pytest.raises(SystemExit) as caught:
        main(["apply", str(tmp_path / "runbook.sql"), "--database-url", "sqlite:///db.sqlite3", *arguments])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"byhand apply: error: {error}"


# -- refusals before any change -------------------------------------------------------------


@pytest.fixture
def runbook(tmp_path: Path) -> Path:
    path = tmp_path / "runbook.sql"
    path.write_text(sqlite_runbook().render(), encoding="utf-8")
    return path


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """An SQLite file with django_migrations and nothing recorded."""
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute(
            'CREATE TABLE "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
            '"app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL)'
        )
    connection.close()
    return path


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    connection.close()
    return sorted(name for name in names if name != "sqlite_sequence")


@pytest.mark.parametrize("command", ["apply", "status"])
def test_no_database_url_and_no_environment_variable(
    command: str, runbook: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither --database-url nor BYHAND_DATABASE_URL: exit 2, saying both ways to give it."""
    monkeypatch.delenv("BYHAND_DATABASE_URL", raising=False)
    assert main([command, str(runbook)]) == ExitStatus.REFUSED == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "byhand: give --database-url URL, or set BYHAND_DATABASE_URL.\n")


def test_unknown_scheme_in_the_option(runbook: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--database-url oracle://...: exit 2, the known schemes listed, the password not echoed."""
    assert main(["apply", str(runbook), "--database-url", "oracle://deploy:s3cret@db.example.com/shop"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"byhand: bad database URL: unknown scheme oracle://; {KNOWN}.\n")


def test_the_environment_variable_is_read(
    runbook: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """BYHAND_DATABASE_URL stands in for --database-url (here an unreadable one)."""
    monkeypatch.setenv("BYHAND_DATABASE_URL", "postgres://deploy:s3cret@db.example.com:pg/shop")
    assert main(["apply", str(runbook)]) == 2
    assert capsys.readouterr().err == "byhand: bad database URL: the port is not a number from 1 to 65535.\n"


def test_the_option_wins_over_the_environment_variable(
    runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With both given, --database-url is used (the environment's URL would be refused)."""
    monkeypatch.setenv("BYHAND_DATABASE_URL", "oracle://db.example.com/shop")
    missing = tmp_path / "missing.sqlite3"
    assert main(["apply", str(runbook), "--database-url", f"sqlite:///{missing}"]) == 2
    assert capsys.readouterr().err.startswith(f"byhand: cannot connect to sqlite:///{missing}: ")


def test_missing_runbook_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 before connecting: no server is needed to say the file is missing."""
    path = tmp_path / "missing.sql"
    assert main(["apply", str(path), "--database-url", "postgres://deploy:s3cret@db.invalid/shop"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"byhand: cannot read {path}: No such file or directory.\n")


def test_truncated_runbook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Half a runbook: exit 2, '(truncated?)', before connecting."""
    path = tmp_path / "runbook.sql"
    text = sqlite_runbook().render()
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    assert main(["apply", str(path), "--database-url", "postgres://deploy:s3cret@db.invalid/shop"]) == 2
    assert capsys.readouterr().err == (
        f"byhand: {path}: not a valid byhand runbook: its last line is not '-- byhand checksum: sha256:…' "
        "(truncated?).\n"
    )


def test_edited_runbook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A changed statement: exit 2 with both checksums, before connecting."""
    original = sqlite_runbook()
    path = tmp_path / "runbook.sql"
    text = original.render().replace("varchar(200) NOT NULL", "varchar(300) NOT NULL")
    path.write_text(text, encoding="utf-8")
    edited = text.rsplit("\n", 2)[0] + "\n"
    assert main(["apply", str(path), "--database-url", "postgres://deploy:s3cret@db.invalid/shop"]) == 2
    assert capsys.readouterr().err == (
        f"byhand: {path}: the runbook was changed after it was written: its checksum says "
        f"sha256:{original.checksum()}, its body hashes to sha256:{hashlib.sha256(edited.encode()).hexdigest()}. "
        "Generate it again, or review the change and re-sign it.\n"
    )


def test_missing_sqlite_file_cannot_connect(runbook: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An SQLite URL naming no file: exit 2, nothing created."""
    missing = tmp_path / "missing.sqlite3"
    assert main(["apply", str(runbook), "--database-url", f"sqlite:///{missing}"]) == 2
    assert capsys.readouterr().err == (
        f"byhand: cannot connect to sqlite:///{missing}: no SQLite database at '{missing}'. Check the file's path, "
        "and that this user may read and write it and its folder (nothing was changed).\n"
    )
    assert not missing.exists()


def test_runbook_for_another_vendor(tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A PostgreSQL runbook against SQLite: exit 2, nothing changed."""
    path = tmp_path / "runbook.sql"
    path.write_text(postgresql_runbook().render(), encoding="utf-8")
    assert main(["apply", str(path), "--database-url", f"sqlite:///{database}"]) == 2
    assert capsys.readouterr().err == (
        "byhand: the runbook was written for postgresql, but the database is sqlite. Generate the runbook "
        "against this database (manage.py byhand sql) (nothing was changed).\n"
    )
    assert tables(database) == ["django_migrations"]


def test_preflight_refusal_exits_2_and_changes_nothing(
    tmp_path: Path, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing dependency: exit 2 with the whole refusal; no journal, no table."""
    path = tmp_path / "runbook.sql"
    path.write_text(sqlite_runbook(requires=["auth.0001_initial"]).render(), encoding="utf-8")
    assert main(["apply", str(path), "--database-url", f"sqlite:///{database}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "byhand: preflight refused the runbook (nothing was changed):\n"
        "  shop.0001_initial: needs auth.0001_initial, which is neither recorded in django_migrations nor "
        "applied earlier in this runbook\n"
    )
    assert tables(database) == ["django_migrations"]


def test_unknown_manual_step_is_refused_as_json_too(
    runbook: Path, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: the refusal is also one 'error' object on stdout, with the exit status."""
    arguments = ["--manual-step-done", "shop.0001_initial:4", "--json"]
    assert main(["apply", str(runbook), "--database-url", f"sqlite:///{database}", *arguments]) == 2
    message = (
        "preflight refused the runbook (nothing was changed):\n"
        "  --manual-step-done shop.0001_initial:4: the runbook has no such manual step (it has: none)"
    )
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [
        {"event": "error", "kind": "PreflightRefused", "message": message, "exit": 2}
    ]
    assert captured.err == f"byhand: {message}\n"
    assert tables(database) == ["django_migrations"]
