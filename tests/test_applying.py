"""byhand apply on real servers: same result as the vendor's CLI, preflight refusals, locks,
retries and blockers, manual steps, the journal and status."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from byhand.events import Event
from byhand.exceptions import GaveUpOnLocks, StatementFailed
from byhand.operating.monitor import Watcher
from byhand.operating.preflight import numbered_steps
from byhand.runbook import parse_runbook
from byhand.vendors.target import Target
from support import (
    VENDOR,
    apply,
    byhand,
    database_url,
    fresh_database,
    journal_rows,
    midway,
    recorded_rows,
    run_with_cli,
    state,
    target_for,
    use_database,
    write_runbook,
)

# -- the result ----------------------------------------------------------------------------


def test_apply_builds_what_the_vendor_cli_builds_and_a_second_run_skips_everything(forwards: Path) -> None:
    """Same schema and rows as psql/mysql/sqlite3 running the file; running again changes nothing."""
    with fresh_database() as a, fresh_database() as b:
        run_with_cli("default", a, forwards)
        done = byhand("apply", str(forwards), "--database-url", database_url(b), "--skip-manual-steps")
        assert done.returncode == 0, done.stderr
        assert state(b) == state(a)
        again = byhand("apply", str(forwards), "--database-url", database_url(b), "--json")
        assert again.returncode == 0, again.stderr
        events = [json.loads(line) for line in again.stdout.splitlines()]
        assert [e["event"] for e in events if e["event"].startswith("migration-")] == ["migration-skipped"] * 29
        assert events[-1]["summary"] == "0 applied, 29 skipped"
        assert state(b) == state(a)


def test_backwards_runbook_unapplies_like_the_cli(forwards: Path, tmp_path: Path) -> None:
    """shop zero, written against the applied database, run by byhand and by the CLI."""
    with fresh_database() as a, fresh_database() as b:
        for db in (a, b):
            run_with_cli("default", db, forwards)
        for app in ("reviews", "shop"):
            path = tmp_path / f"{app}-zero.sql"
            with use_database("default", b):
                write_runbook("default", path, app, "zero")
            run_with_cli("default", a, path)
            apply(path, b, skip_manual_steps=True)
            assert state(b) == state(a)
        assert not any(app == "shop" for app, _ in state(b)[1])


def test_dry_run_changes_nothing_and_shows_the_journal_ddl(forwards: Path) -> None:
    """--dry-run: the verdict, the statements, the journal's DDL; no table is created."""
    with fresh_database() as db:
        before = state(db)
        done = byhand("apply", str(forwards), "--database-url", database_url(db), "--dry-run")
        assert done.returncode == 0, done.stderr
        assert "shop.0001_initial: run, not recorded: will be applied" in done.stdout
        assert "will stop before manual step auth.0011_update_proxy_permissions:0" in done.stdout
        assert "apply would create it:" in done.stdout and "byhand_journal" in done.stdout
        assert state(db) == before
        target = target_for(db)
        assert not target.table_exists("byhand_journal")
        target.close()


# -- refused before any change ---------------------------------------------------------------


@pytest.mark.needs_server
def test_missing_dependency_is_refused_naming_it(tmp_path: Path) -> None:
    """A runbook for shop 0004 on a database without shop 0003: exit 2, nothing created."""
    path = tmp_path / "shop-0004.sql"
    with fresh_database() as written, fresh_database() as empty:
        midway(written, path, "shop", "0004")
        done = byhand("apply", str(path), "--database-url", database_url(empty))
        assert done.returncode == 2
        assert "shop.0004_book_changes: needs shop.0003_rename_unnamed_index, which is neither recorded" in done.stderr
        assert state(empty) == ({}, set())


def test_edited_runbook_is_refused_until_signed_and_the_journal_keeps_the_signature(
    forwards: Path, tmp_path: Path
) -> None:
    """A reviewer's edit: apply refuses (exit 2); after byhand sign it runs and journals who signed."""
    edited = tmp_path / "edited.sql"
    text = forwards.read_text()
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if "shop_book_promo_idx" in line and line.rstrip().endswith(";"))
    lines[index] = lines[index].rstrip("\n") + " -- reviewed\n"
    edited.write_text("".join(lines))
    assert edited.read_text() != text
    with fresh_database() as db:
        refused = byhand("apply", str(edited), "--database-url", database_url(db))
        assert refused.returncode == 2
        assert "the runbook was changed after it was written" in refused.stderr
        assert state(db) == ({}, set())
        signed = byhand("sign", str(edited))
        assert signed.returncode == 0, signed.stderr
        done = byhand("apply", str(edited), "--database-url", database_url(db), "--skip-manual-steps")
        assert done.returncode == 0, done.stderr
        assert "re-signed by" in done.stdout
        started = [json.loads(row[5]) for row in journal_rows(db) if row[0] == "run-started"]
        assert started[0]["signed"][0]["was"] == forwards.read_text().rsplit("sha256:", 1)[1].strip()


def test_bad_input_is_refused_with_a_clear_message(forwards: Path, tmp_path: Path) -> None:
    """Truncated file, another vendor's runbook, unknown scheme, unreachable host: exit 2."""
    truncated = tmp_path / "truncated.sql"
    truncated.write_text(forwards.read_text()[: len(forwards.read_text()) // 2])
    other = tmp_path / "other.sql"
    other_vendor = "mysql" if VENDOR != "mysql" else "postgresql"
    other.write_text(forwards.read_text().replace(f'"vendor": "{VENDOR}"', f'"vendor": "{other_vendor}"', 1))
    # Its control statements are no longer what its vendor's runbooks hold: sign refuses it
    # (SQLite's PRAGMAs), or its markers no longer say what the SQL does (BEGIN/COMMIT).
    signed = byhand("sign", str(other))
    assert signed.returncode == 2, signed.stderr
    assert "SQL outside a step ('PRAGMA" in signed.stderr or "BEGIN/COMMIT" in signed.stderr, signed.stderr
    other_refusal = "the runbook was changed after it was written"  # not re-signed
    with fresh_database() as db:
        url = database_url(db)
        cases = [
            (byhand("apply", str(truncated), "--database-url", url), "(truncated?)"),
            (byhand("apply", str(other), "--database-url", url), other_refusal),
            (byhand("apply", str(forwards), "--database-url", "oracle://x/y"), "unknown scheme oracle://"),
            (
                byhand("apply", str(forwards), "--database-url", "postgres://bob:s3cret@127.0.0.1:1/x"),
                "cannot connect to postgresql://bob@127.0.0.1:1/x",
            ),
            (
                byhand("apply", str(forwards), "--database-url", "mysql://bob:s3cret@127.0.0.1:1/x"),
                "cannot connect to mysql://bob@127.0.0.1:1/x",
            ),
        ]
        for done, message in cases:
            assert done.returncode == 2, done.stderr
            assert message in done.stderr
            assert "s3cret" not in done.stderr + done.stdout
        assert state(db) == ({}, set())


def test_wrong_password_is_refused_without_echoing_it(forwards: Path) -> None:
    """MariaDB checks passwords over TCP (the test PostgreSQL trusts every local user)."""
    if VENDOR != "mysql":
        pytest.skip("the test PostgreSQL server uses trust authentication; SQLite has no passwords")
    with fresh_database() as db:
        url = database_url(db).replace("root@", "root:wr0ng-pass@")
        done = byhand("apply", str(forwards), "--database-url", url)
        assert done.returncode == 2
        assert "Access denied" in done.stderr and "wr0ng-pass" not in done.stderr


def test_a_second_apply_is_refused_naming_the_holder(forwards: Path) -> None:
    """While another operator holds the run lock, apply refuses (exit 2) and names the holder."""
    with fresh_database() as db:
        holder = target_for(db)
        try:
            assert holder.try_run_lock("byhand_journal")
            done = byhand("apply", str(forwards), "--database-url", database_url(db), "--run-lock-wait", "0.3s")
        finally:
            holder.close()
        assert done.returncode == 2
        assert "another byhand apply is running against this database:" in done.stderr
        expected = {"postgresql": "server pid", "mysql": "connection", "sqlite": f"pid {os.getpid()} of"}[VENDOR]
        assert expected in done.stderr
        assert state(db) == ({}, set())


# -- locks ---------------------------------------------------------------------------------


@contextmanager
def blocking(settings: dict[str, Any]) -> Iterator[Target]:
    """A session that holds a lock on shop_book in an open transaction (SQLite: the write lock)."""
    blocker = target_for(settings)
    if VENDOR == "mysql":
        # Before BEGIN: INSTALL commits the session's transaction, which would end the block.
        _install_metadata_lock_info(blocker)
    if VENDOR == "sqlite":
        blocker.execute("BEGIN IMMEDIATE")
    else:
        blocker.execute("BEGIN")
        blocker.execute("SELECT * FROM shop_book")
    try:
        yield blocker
    finally:
        blocker.rollback()
        blocker.close()


@pytest.mark.needs_server
def test_lock_timeout_retries_reports_the_blocker_and_lands(tmp_path: Path) -> None:
    """A transaction holds shop_book: each attempt times out, names the blocker, backs off;
    when the blocker ends, the migration lands whole."""
    path = tmp_path / "shop-0004.sql"
    with fresh_database() as db:
        midway(db, path, "shop", "0004")
        waits: list[float] = []
        with blocking(db) as blocker:
            pid = blocker.session_id()

            def sleep(seconds: float) -> None:
                waits.append(seconds)
                if len(waits) == 2:
                    blocker.rollback()

            events, _ = apply(path, db, sleep=sleep)
        timeouts = [e.data for e in events if e.name == "lock-timeout"]
        # MariaDB counts lock_wait_timeout in whole seconds, so 100ms is NOWAIT there: under
        # load a later statement was seen (twice) to time out once more after the blocker
        # had gone, on a lock of the server's own; it is retried like any other.
        timeouts, later = timeouts[:2], timeouts[2:]
        assert [t["attempt"] for t in timeouts] == [1, 2]
        if VENDOR != "sqlite":  # SQLite cannot say who holds its lock; here it is this very process
            assert all(pid in [b["pid"] for b in t["blockers"]] for t in timeouts)
        assert not later if VENDOR != "mysql" else all(pid not in [b["pid"] for b in t["blockers"]] for t in later)
        assert 0.1 <= waits[0] <= 0.2 and 0.2 <= waits[1] <= 0.4
        done = [e.data for e in events if e.name == "migration-done"]
        # SQLite's one write lock blocks the run's first write already (the journal), other
        # vendors block the migration's ALTER TABLE.
        blocked = None if VENDOR == "sqlite" else "shop.0004_book_changes"
        assert [t["migration"] for t in timeouts] == [blocked, blocked]
        assert done[-1]["migration"] == "shop.0004_book_changes"
        assert done[-1]["attempts"] == (1 if VENDOR == "sqlite" else 3) or later
        assert ("shop", "0004_book_changes") in state(db)[1]


@pytest.mark.needs_server
def test_a_long_build_is_not_thrown_away_by_a_transaction_at_its_last_lock(tmp_path: Path) -> None:
    """MariaDB: an index build (ALGORITHM=NOCOPY, LOCK=NONE) takes its exclusive metadata lock
    again to finish. Under the default 100 ms lock timeout, NOWAIT there (whole seconds), one
    transaction that read the table during the build made the finished build fail at that
    lock, and apply built it all again. A statement the rehearsal saw read every row waits
    at least 1 s for its locks: it waits for the transaction and completes in one attempt."""
    if VENDOR != "mysql":
        pytest.skip("MariaDB's lock_wait_timeout takes whole seconds")
    seen: list[str] = []
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.backwards_leftovers"}), fresh_database() as db:
        with use_database("default", db):
            call_command("migrate", "catalog", "0001", verbosity=0)
            write_runbook("default", tmp_path / "0002.sql", "catalog", "0002")
        target = target_for(db)
        try:
            target.execute("INSERT INTO catalog_category (name) VALUES ('c')")
            target.execute(
                "INSERT INTO catalog_item (title, category_id) SELECT CONCAT('item ', seq), 1 FROM seq_1_to_1000000"
            )
            # Statistics now, not by InnoDB's background thread, whose metadata lock made the
            # NOWAIT statements before the build time out (retried) while apply ran.
            target.execute("ANALYZE TABLE catalog_item")
        finally:
            target.close()
        reader = threading.Thread(target=_read_during_the_build, args=(db, "catalog_item_cat_title_idx", seen))
        reader.start()
        try:
            events, _ = apply(tmp_path / "0002.sql", db)
        finally:
            reader.join()
    assert seen == ["building", "waiting for the reader's metadata lock"], seen
    # The build's statement, started once and never timed out. (The INSTANT statements before
    # it may still time out under NOWAIT on a lock of the server's own: retried, as any.)
    block = parse_runbook((tmp_path / "0002.sql").read_text()).migrations[0]
    [build] = [number for number, step in numbered_steps(block) if "catalog_item_cat_title_idx" in step.sql]
    at_build = [e for e in events if e.data.get("index") == build and e.data.get("migration") == block.migration]
    assert [e.data["attempt"] for e in at_build if e.name == "statement-started"] == [1]
    assert [e.data for e in at_build if e.name == "lock-timeout"] == []
    done = [e.data["migration"] for e in events if e.name == "migration-done"]
    assert done == ["catalog.0002_item_note_index"]


def _read_during_the_build(settings: dict[str, Any], index: str, seen: list[str]) -> None:
    """Once the CREATE INDEX of ``index`` has run for 0.1 s (past its first lock: building),
    read its table in a transaction and keep it open until the build waits for it at its
    last lock (or 30 s have passed), then 0.2 s more; ``seen`` says what it saw."""
    session, watcher = target_for(settings), target_for(settings)
    running = (
        "SELECT STATE, TIME_MS FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND INFO LIKE 'CREATE INDEX %%' "
        "AND ID <> CONNECTION_ID() AND COMMAND = 'Query'"
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(ms > 100 for _, ms in watcher.execute(running, (f"%{index}%",))):
            time.sleep(0.005)
        seen.append("building")
        session.execute("BEGIN")
        session.execute("SELECT title FROM catalog_item WHERE id = 5")
        while time.monotonic() < deadline:
            states = [row[0] for row in watcher.execute(running, (f"%{index}%",))]
            if any("metadata lock" in (state or "") for state in states):
                seen.append("waiting for the reader's metadata lock")
                time.sleep(0.2)
                break
            if not states:
                break  # the statement ended (failed at its last lock with NOWAIT)
            time.sleep(0.005)
        session.execute("COMMIT")
    finally:
        session.close()
        watcher.close()


def _install_metadata_lock_info(session: Target) -> None:
    """MariaDB names the holders of a metadata lock only with this plugin (shipped with the server)."""
    rows = session.execute("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'")
    if not rows[0][0]:
        session.execute("INSTALL SONAME 'metadata_lock_info'")


@pytest.mark.needs_server
def test_gives_up_after_max_attempts_with_the_migration_untouched(tmp_path: Path) -> None:
    """--max-attempts 2 against a blocker that stays: exit 3, shop 0004 neither applied nor recorded."""
    path = tmp_path / "shop-0004.sql"
    with fresh_database() as db:
        midway(db, path, "shop", "0004")
        before = state(db)
        with blocking(db):
            done = byhand("apply", str(path), "--database-url", database_url(db), "--max-attempts", "2")
        assert done.returncode == 3, done.stderr
        where = "the run's start (journal)" if VENDOR == "sqlite" else "shop.0004_book_changes"
        assert f"byhand: {where}" in done.stderr and "gave up after 2 attempt(s)" in done.stderr
        assert state(db) == before
        status = byhand("status", str(path), "--database-url", database_url(db))
        assert "shop.0004_book_changes" in status.stdout
        if VENDOR != "sqlite":
            assert "gave-up" in status.stdout


@pytest.mark.needs_server
def test_cancel_blockers_terminates_an_old_idle_transaction(tmp_path: Path) -> None:
    """--cancel-blockers-after 2: the idle-in-transaction blocker is terminated, printed and journaled."""
    if VENDOR == "sqlite":
        pytest.skip("SQLite has no sessions to cancel")
    path = tmp_path / "shop-0004.sql"
    with fresh_database() as db:
        midway(db, path, "shop", "0004")
        with blocking(db) as blocker:
            pid = blocker.session_id()
            events, _ = apply(path, db, cancel_blockers_after=2, terminate_idle_after=timedelta(0))
        terminated = [e.data["blocker"]["pid"] for e in events if e.name == "blocker-terminated"]
        assert terminated == [pid]
        assert [row[:2] for row in journal_rows(db) if row[0] == "blocker-terminated"] == [
            ("blocker-terminated", "done")
        ]
        assert ("shop", "0004_book_changes") in state(db)[1]


# -- manual steps ---------------------------------------------------------------------------


def test_manual_steps_stop_the_run_until_the_operator_says(forwards: Path) -> None:
    """Exit 4 before each RunPython; --manual-step-done goes past one, --skip-manual-steps past all."""
    with fresh_database() as db:
        url = database_url(db)
        first = byhand("apply", str(forwards), "--database-url", url)
        assert first.returncode == 4, first.stderr
        assert "auth.0011_update_proxy_permissions: stopped before manual step 0" in first.stderr
        assert ("auth", "0011_update_proxy_permissions") not in state(db)[1]
        unknown = byhand("apply", str(forwards), "--database-url", url, "--manual-step-done", "shop.0001:9")
        assert unknown.returncode == 2 and "the runbook has no such manual step" in unknown.stderr
        second = byhand(
            "apply", str(forwards), "--database-url", url, "--manual-step-done", "auth.0011_update_proxy_permissions:0"
        )
        assert second.returncode == 4, second.stderr
        assert ("auth", "0011_update_proxy_permissions") in state(db)[1]
        assert "stopped before manual step" in second.stderr and "auth.0011" not in second.stderr
        third = byhand("apply", str(forwards), "--database-url", url, "--skip-manual-steps")
        assert third.returncode == 0, third.stderr
        manual = [(row[1], row[2]) for row in journal_rows(db) if row[0] == "manual-step"]
        assert manual[0] == ("done", "auth.0011_update_proxy_permissions")
        assert {status for status, _ in manual[1:]} == {"skipped"}


# -- failures and the journal -------------------------------------------------------------------


@pytest.mark.needs_server
def test_a_failing_statement_rolls_back_its_migration_and_status_shows_it(tmp_path: Path) -> None:
    """The table 0004 adds a column to already has it: exit 1, status names statement and error; after
    the cause is removed the same runbook resumes."""
    path = tmp_path / "shop-0004.sql"
    with fresh_database() as db:
        midway(db, path, "shop", "0004")
        runbook = parse_runbook(path.read_text())
        block = runbook.migrations[-1]
        add = next(s.sql for s in block.steps if "ADD COLUMN" in s.sql.upper())
        saboteur = target_for(db)
        saboteur.execute(add)
        before = state(db)
        with pytest.raises(StatementFailed):
            apply(path, db)
        if VENDOR != "mysql":
            assert state(db) == before
        status = byhand("status", str(path), "--database-url", database_url(db))
        assert "failed at statement" in status.stdout
        undo = {
            "postgresql": 'ALTER TABLE "shop_book" DROP COLUMN',
            "mysql": "ALTER TABLE `shop_book` DROP COLUMN",
            "sqlite": 'ALTER TABLE "shop_book" DROP COLUMN',
        }[VENDOR]
        column = add.split("ADD COLUMN", 1)[1].split()[0]
        saboteur.execute(f"{undo} {column}")
        saboteur.close()
        apply(path, db)
        assert ("shop", "0004_book_changes") in state(db)[1]


@pytest.mark.needs_server
def test_gave_up_on_locks_raises_with_blockers(tmp_path: Path) -> None:
    """In the library: GaveUpOnLocks carries attempts and the blockers' descriptions (on
    SQLite, which cannot say who holds its lock, the holder is this very process: none)."""
    path = tmp_path / "shop-0004.sql"
    with fresh_database() as db:
        midway(db, path, "shop", "0004")
        with blocking(db) as blocker, pytest.raises(GaveUpOnLocks) as raised:
            session = blocker.session_id()
            apply(path, db, max_attempts=3)
        assert raised.value.attempts == 3
        if VENDOR == "sqlite":
            assert raised.value.blockers == []
        else:
            assert [b.split(" ", 2)[:2] for b in raised.value.blockers] == [["pid", str(session)]]
            if VENDOR == "postgresql":  # MariaDB shows no query for a session idle in transaction
                assert "SELECT * FROM shop_book" in raised.value.blockers[0]


@pytest.mark.needs_server
def test_create_index_concurrently_waits_for_old_transactions_without_a_lock_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CIC waits for transactions older than it, which blocks no query: it gets no short lock
    timeout (which would only throw builds away), and the live report names what it waits for.
    The old transaction ends once the report has named it."""
    if VENDOR != "postgresql":
        pytest.skip("CREATE INDEX CONCURRENTLY is PostgreSQL's")
    monkeypatch.setattr(Watcher, "interval", 0.2)
    path = tmp_path / "shop-0009.sql"
    with fresh_database() as db:
        midway(db, path, "shop", at="0008")
        old = target_for(db)
        old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT count(*) FROM shop_author")  # holds a snapshot older than the build
        pid = old.session_id()

        def end_once_named(event: Event) -> None:
            if event.name == "waiting" and pid in [b["pid"] for b in event.data["blockers"]]:
                old.rollback()

        try:
            events, _ = apply(path, db, watch=end_once_named)
        finally:
            old.close()
    assert [e for e in events if e.name == "lock-timeout"] == []
    waiting = [e.data for e in events if e.name == "waiting"]
    assert waiting and pid in [b["pid"] for b in waiting[0]["blockers"]]
    assert [e.data["migration"] for e in events if e.name == "migration-done"] == ["shop.0009_concurrent_index"]


def test_manage_py_byhand_apply_takes_the_connection_from_settings(forwards: Path) -> None:
    """manage.py byhand apply: the same executor; a manual step ends it with exit status 4."""
    with fresh_database() as db, use_database("default", db):
        with pytest.raises(SystemExit) as stopped:
            call_command("byhand", "apply", str(forwards), "--database", "default")
        assert stopped.value.code == 4
        call_command("byhand", "apply", str(forwards), "--database", "default", "--skip-manual-steps")
        assert ("shop", "0009_concurrent_index") in recorded_rows("default")


@pytest.mark.needs_server
def test_run_python_runs_the_manual_step_apply_stopped_at(tmp_path: Path) -> None:
    """apply stops and prints the run-python command; it runs the function with the historical
    models; apply then goes past it with --manual-step-done."""
    path = tmp_path / "shop-0007.sql"
    with fresh_database() as db, use_database("default", db):
        call_command("migrate", "shop", "0006", database="default", verbosity=0)
        write_runbook("default", path, "shop", "0007")
        with connections["default"].cursor() as cursor:
            cursor.execute("INSERT INTO shop_book (title, code, promo) VALUES ('t', 'c', 'p')")
        url = database_url(db)
        first = byhand("apply", str(path), "--database-url", url)
        assert first.returncode == 4
        command = "python manage.py byhand run-python shop.0007_sql_and_python:3 --database default"
        assert command in first.stderr
        call_command("byhand", "run-python", "shop.0007_sql_and_python:3", "--database", "default")
        second = byhand("apply", str(path), "--database-url", url, "--manual-step-done", "shop.0007_sql_and_python:3")
        assert second.returncode == 4 and "shop.0007_sql_and_python:4" in second.stderr
        call_command("byhand", "run-python", "shop.0007_sql_and_python:4", "--database", "default")
        third = byhand("apply", str(path), "--database-url", url, "--manual-step-done", "shop.0007_sql_and_python:4")
        assert third.returncode == 0, third.stderr
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT name FROM shop_author")
            assert list(cursor.fetchall()) == [("Ada",)]
            cursor.execute("SELECT pages FROM shop_book")
            assert list(cursor.fetchall()) == [(0,)]
        assert ("shop", "0007_sql_and_python") in recorded_rows("default")


@pytest.mark.needs_server
def test_run_python_renames_the_content_type_after_a_rename_model(tmp_path: Path) -> None:
    """The manual step contenttypes injects after RenameModel: shop.publisher becomes shop.imprint,
    run where byhand apply stops for it (shop.0004 recorded, shop.0005 not)."""
    with fresh_database() as db, use_database("default", db):
        call_command("migrate", "contenttypes", database="default", verbosity=0)
        call_command("migrate", "shop", "0004", database="default", verbosity=0)
        ContentType.objects.clear_cache()
        # migrate's post_migrate made content types for today's models (imprint): as before 0005.
        ContentType.objects.using("default").filter(app_label="shop", model="imprint").delete()
        ContentType.objects.db_manager("default").get_or_create(app_label="shop", model="publisher")
        call_command("byhand", "run-python", "shop.0005_rename_publisher:0", "--database", "default")
        models = set(ContentType.objects.using("default").filter(app_label="shop").values_list("model", flat=True))
        ContentType.objects.clear_cache()
        assert "imprint" in models and "publisher" not in models


@pytest.mark.needs_server
def test_an_invalid_index_left_by_a_failed_concurrent_build_is_dropped_before_building_it(tmp_path: Path) -> None:
    """A concurrent build that failed (here: a unique build over duplicates) leaves an INVALID
    index of that name; apply drops it with DROP INDEX CONCURRENTLY, then builds its own."""
    if VENDOR != "postgresql":
        pytest.skip("INVALID indexes come from PostgreSQL's CREATE INDEX CONCURRENTLY")
    path = tmp_path / "shop-0009.sql"
    with fresh_database() as db:
        midway(db, path, "shop", at="0008")
        failed = target_for(db)
        failed.execute("INSERT INTO shop_book (title, code, promo) VALUES ('a', 'c', 'same'), ('b', 'c', 'same')")
        with pytest.raises(failed.driver_errors()):
            failed.execute('CREATE UNIQUE INDEX CONCURRENTLY "shop_book_promo_idx" ON "shop_book" ("promo")')
        failed.close()
        events, _ = apply(path, db)
        check = target_for(db)
        valid, unique = check.execute(
            "SELECT i.indisvalid, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'shop_book_promo_idx'"
        )[0]
        check.close()
    dropped = [e.data["sql"] for e in events if e.name == "invalid-index-dropped"]
    assert dropped == ['DROP INDEX CONCURRENTLY IF EXISTS "shop_book_promo_idx";']
    assert (valid, unique) == (True, False)
