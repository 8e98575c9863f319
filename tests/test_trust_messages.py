"""Issue 16, #16.19: messages a new user found wrong. One test per complaint; "blocked by no
blocker found" is asserted with #16.10 in test_trust_blockers.py. Black-box: the console
script and manage.py in subprocesses."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from support import VENDOR, database_url, fresh_database
from trust_helpers import (
    Reader,
    Session,
    bumps,
    byhand,
    byhand_popen,
    example_runbook,
    holding_probe_item,
    install_metadata_lock_info,
    journal_rows,
    manage,
    probe_at_0001,
    probe_project,
    session,
    wait_until,
)

pytestmark = pytest.mark.needs_server


def migrate(db: dict[str, Any], *args: str) -> None:
    done = manage(db, "migrate", *args, "--verbosity", "0")
    assert done.returncode == 0, done.stderr


@pytest.fixture
def shop_0001(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """An empty database and the example's runbook for shop 0001 (it creates django_migrations first)."""
    with fresh_database() as db:
        yield db, example_runbook(db, tmp_path / "shop-0001.sql", "shop", "0001")


# -- "1 migrations" ---------------------------------------------------------------------------


def test_one_migration_is_not_called_1_migrations(tmp_path: Path) -> None:
    """#16.19: byhand sql for one migration says "(1 migration)", in its message and in the plan comment."""
    path = tmp_path / "one.sql"
    with fresh_database() as db:
        done = manage(db, "byhand", "sql", "shop", "0001", "-o", str(path))
    assert done.returncode == 0, done.stderr
    found = {"message": "1 migrations" in done.stderr, "runbook": "1 migrations" in path.read_text()}
    assert found == {"message": False, "runbook": False}, done.stderr
    assert f"Wrote {path} (1 migration)." in done.stderr


# -- doubled ';;' in blocker queries ------------------------------------------------------------------


def test_blocker_queries_ending_in_a_semicolon_are_not_joined_with_another(tmp_path: Path) -> None:
    """#16.19: two blockers whose last queries end in ';': the lock-timeout line and the give-up
    message hold no ';;'."""
    if VENDOR != "postgresql":
        pytest.skip("PostgreSQL keeps an idle session's last query; MariaDB shows running queries only")
    project = probe_project(tmp_path / "project")
    with fresh_database() as db:
        runbook = probe_at_0001(project, db, tmp_path / "probe-0002.sql")
        blockers = [Session(db, application=f"trust-blocker-{n}") for n in (1, 2)]
        try:
            for blocker in blockers:
                blocker.execute("BEGIN")
                blocker.execute("SELECT * FROM probe_item;")
            done = byhand("apply", str(runbook), "--database-url", database_url(db), "--max-attempts", "2")
        finally:
            for blocker in blockers:
                blocker.close()
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("SELECT * FROM probe_item") == 2, done.stderr
    assert ";;" not in done.stdout + done.stderr, done.stderr


# -- "statement(s) [1] may have taken effect" ----------------------------------------------------------


def test_an_uncertain_statement_is_named_without_a_python_list(tmp_path: Path) -> None:
    """#16.19: apply killed (SIGKILL) while a statement that commits alone waits (PostgreSQL: CREATE
    INDEX CONCURRENTLY behind an old snapshot; MariaDB: the ALTER TABLE behind a metadata lock);
    the next dry run says "statement N may have taken effect", not "statement(s) [N]"."""
    if VENDOR == "sqlite":
        pytest.skip("SQLite has no statement that commits alone")
    with fresh_database() as db:
        if VENDOR == "postgresql":
            migrate(db, "shop", "0008")
            runbook = example_runbook(db, tmp_path / "shop-0009.sql", "shop", "0009")
            holder = Session(db, application="trust-old-snapshot")
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            holder.execute("SELECT count(*) FROM shop_author")
            waiting = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%'"
            )
            options: tuple[str, ...] = ()
        else:
            project = probe_project(tmp_path / "project")
            runbook = probe_at_0001(project, db, tmp_path / "probe-0002.sql")
            install_metadata_lock_info(db)
            holder = Session(db)
            holder.execute("BEGIN")
            holder.execute("SELECT * FROM probe_item")
            waiting = (
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'ALTER TABLE%'"
            )
            options = ("--lock-timeout", "30s")
        apply = byhand_popen("apply", str(runbook), "--database-url", database_url(db), *options)
        try:
            with session(db) as look:
                wait_until(lambda: look.execute(waiting)[0][0] == 1, what="the statement to wait")
        finally:
            apply.send_signal(signal.SIGKILL)
            apply.communicate(timeout=30)
            holder.execute("ROLLBACK")
            holder.close()
        dry = byhand("apply", str(runbook), "--database-url", database_url(db), "--dry-run", "--run-lock-wait", "5s")
    lines = [line for line in dry.stdout.splitlines() if "may have taken effect" in line]
    assert dry.returncode == 0, dry.stderr
    assert len(lines) == 1, dry.stdout
    assert re.search(r"statement \d+ may have taken effect", lines[0]) and "[" not in lines[0], lines[0]


# -- hints naming commands that do not exist ------------------------------------------------------------


def test_verify_suggests_the_record_command_by_its_real_name() -> None:
    """#16.19: verify's applied-not-recorded hint names `manage.py byhand record …`, not a console
    command `byhand record` that does not exist."""
    with fresh_database() as db:
        migrate(db, "shop", "0004")
        with session(db) as s:
            s.execute("DELETE FROM django_migrations WHERE app = 'shop' AND name = '0004_book_changes'")
        done = manage(db, "byhand", "verify")
    assert done.returncode == 1, done.stderr[-800:]
    before = [done.stdout[max(0, m.start() - 10) : m.start()] for m in re.finditer("byhand record", done.stdout)]
    assert before and all(text.endswith("manage.py ") for text in before), done.stdout


# -- SQLite errors that talk of host and port ---------------------------------------------------


def test_an_sqlite_error_does_not_talk_of_host_and_port(shop_0001: tuple[dict, Path]) -> None:
    """#16.19: an SQLite path that does not exist: exit 2, the path named, no "host, port, user,
    password" advice."""
    _db, runbook = shop_0001
    done = byhand("apply", str(runbook), "--database-url", "sqlite:////nonexistent-byhand-dir/db.sqlite3")
    assert done.returncode == 2, done.stderr
    assert "/nonexistent-byhand-dir/db.sqlite3" in done.stderr
    assert "host" not in done.stderr and "port" not in done.stderr, done.stderr


# -- MariaDB's header says 0.1s while it runs NOWAIT ---------------------------------------------------


def test_mariadb_header_says_nowait(shop_0001: tuple[dict, Path]) -> None:
    """#16.19: on MariaDB the default 100ms lock timeout runs as NOWAIT (whole seconds, rounded
    down): the run's header says so instead of "lock timeout 0.1s"."""
    if VENDOR != "mysql":
        pytest.skip("MariaDB's lock_wait_timeout takes whole seconds")
    db, runbook = shop_0001
    done = byhand("apply", str(runbook), "--database-url", database_url(db), "--dry-run")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("lock timeout"))
    assert "NOWAIT" in header and "0.1s" not in header, header


# -- status: time zones, finished_at, block names and counts ------------------------------------------


def test_status_times_carry_their_time_zone(shop_0001: tuple[dict, Path]) -> None:
    """#16.19: the run lines of `byhand status` show when, with the time zone (MariaDB: none today)."""
    db, runbook = shop_0001
    assert byhand("apply", str(runbook), "--database-url", database_url(db)).returncode == 0
    done = byhand("status", str(runbook), "--database-url", database_url(db))
    runs = done.stdout.split("runs (newest first):", 1)[1].strip().splitlines()
    assert len(runs) == 1, done.stdout
    assert re.search(r"\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z| UTC)\b", runs[0]), runs[0]


def test_status_json_has_finished_at_for_a_finished_run(shop_0001: tuple[dict, Path]) -> None:
    """#16.19: `byhand status --json` gives a finished run its finished_at (not null)."""
    db, runbook = shop_0001
    assert byhand("apply", str(runbook), "--database-url", database_url(db)).returncode == 0
    done = byhand("status", str(runbook), "--database-url", database_url(db), "--json")
    runs = json.loads(done.stdout)["runs"]
    assert [(run["outcome"], run["finished_at"] is not None) for run in runs] == [("done", True)], runs


def test_inspect_names_and_counts_blocks_as_apply_does(shop_0001: tuple[dict, Path]) -> None:
    """#16.19: inspect and apply give every block the same name ((setup), not (create
    django_migrations)) and the same number of statements."""
    db, runbook = shop_0001
    inspected = byhand("inspect", str(runbook))
    assert inspected.returncode == 0, inspected.stderr
    shown = {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"^  (\S.*?)\s+(?:NOT )?atomic\s+(\d+) statement\(s\)$", inspected.stdout, re.M)
    }
    applied = byhand("apply", str(runbook), "--database-url", database_url(db), "--json")
    assert applied.returncode == 0, applied.stderr
    counted: dict[str, int] = {}
    for event in map(json.loads, applied.stdout.splitlines()):
        if event["event"] == "statement-started":
            counted.setdefault(event.get("migration") or f"({event['block']})", event["total"])
    assert shown == counted, inspected.stdout


# -- a backwards runbook's target ----------------------------------------------------------------


def test_a_backwards_runbooks_target_is_the_full_name(tmp_path: Path) -> None:
    """#16.19: `byhand sql shop 0005` on a database at shop.0006 writes target shop.0005_rename_publisher
    in the header, not the prefix as typed."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        runbook = example_runbook(db, tmp_path / "back.sql", "shop", "0005")
    header = json.loads(runbook.read_text().splitlines()[1].removeprefix("-- byhand: "))
    assert (header["direction"], header["target"]) == ("backwards", "shop.0005_rename_publisher")


# -- SIGTERM's exit status -------------------------------------------------------------------------


#: A session of this database waiting for a lock (the apply's ALTER TABLE), as the server sees it.
WAITING = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock'",
    "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
    "AND STATE = 'Waiting for table metadata lock'",
}


def test_sigterm_has_its_own_documented_exit_status_and_is_journaled(tmp_path: Path) -> None:
    """#16.19 (and #16.3, every way a run ends is journaled): SIGTERM while apply retries a lock
    (PostgreSQL: while the ALTER TABLE waits its 100ms) ends it with an exit status other than 1
    ("failed") and every other documented one, listed in `byhand apply --help`, and the journal
    says interrupted."""
    project = probe_project(tmp_path / "project")
    with fresh_database() as db:
        runbook = probe_at_0001(project, db, tmp_path / "probe-0002.sql")
        if VENDOR == "mysql":
            install_metadata_lock_info(db)
        with holding_probe_item(db), session(db) as look:
            apply = byhand_popen("apply", str(runbook), "--database-url", database_url(db))
            err = Reader(apply.stderr)
            err.start()
            try:
                if VENDOR == "postgresql":
                    wait_until(lambda: look.execute(WAITING[VENDOR])[0][0] == 1, what="the ALTER TABLE to wait")
                elif VENDOR == "mysql":  # NOWAIT: apply spends its time between attempts
                    wait_until(lambda: bumps(db) == 1, what="apply's UPDATE")
                    time.sleep(0.3)
                else:  # waiting for the write lock, in BEGIN IMMEDIATE, before the run's start
                    wait_until(lambda: Path(db["NAME"] + ".byhand_journal.lock").exists(), what="the run lock")
                    time.sleep(0.3)
            finally:
                apply.send_signal(signal.SIGTERM)
                returncode = apply.wait(timeout=30)
            err.join(timeout=5)
        ends = [row["status"] for row in journal_rows(db) if row["event"] == "run-finished"]
    documented = byhand("apply", "--help").stdout
    shown = returncode if returncode >= 0 else 128 - returncode  # killed by the signal: the shell's 128+N
    facts = {
        "exit is its own": shown not in (0, 1, 2, 3, 4),
        "exit documented": bool(re.search(rf"^\s*{shown}\s+.*(SIGTERM|interrupt)", documented, re.M | re.I)),
        "traceback": "Traceback" in err.text,
        # SQLite: the blocker holds the only write lock, so the end may be unwritable; status
        # then says "interrupted (no end journaled)", which is true.
        "journaled": ends == ["interrupted"] or (VENDOR == "sqlite" and ends == []),
    }
    expected = {"exit is its own": True, "exit documented": True, "traceback": False, "journaled": True}
    assert facts == expected, f"exit {returncode}, journal {ends}, stderr: {err.text[-500:]}"


def test_a_session_ended_by_the_server_is_journaled(tmp_path: Path) -> None:
    """#16.3 (every way a run can end is journaled, with the reason): the server ends apply's
    session while its ALTER TABLE waits (--lock-timeout 5s): exit 1, and the journal's end of
    run says the connection was lost (today: no end at all, status guesses "interrupted")."""
    if VENDOR == "sqlite":
        pytest.skip("SQLite has no server to end a session")
    project = probe_project(tmp_path / "project")
    who = {
        "postgresql": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'",
        "mysql": "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
        "AND STATE = 'Waiting for table metadata lock'",
    }[VENDOR]
    kill = "SELECT pg_terminate_backend(%s)" if VENDOR == "postgresql" else "KILL CONNECTION %s"
    with fresh_database() as db:
        runbook = probe_at_0001(project, db, tmp_path / "probe-0002.sql")
        if VENDOR == "mysql":
            install_metadata_lock_info(db)
        with holding_probe_item(db), session(db) as look:
            apply = byhand_popen("apply", str(runbook), "--database-url", database_url(db), "--lock-timeout", "5s")
            try:
                wait_until(lambda: len(look.execute(who)) == 1, what="the ALTER TABLE to wait")
                look.execute(kill % int(look.execute(who)[0][0]))
            finally:
                _out, stderr = apply.communicate(timeout=30)
        ends = [(row["status"], row["error"] or "") for row in journal_rows(db) if row["event"] == "run-finished"]
    assert apply.returncode == 1, stderr
    assert len(ends) == 1 and ends[0][0] in ("connection-lost", "failed"), (ends, stderr[-400:])
    assert "connection" in ends[0][1], ends
