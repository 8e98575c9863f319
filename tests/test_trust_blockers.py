"""Issue 16, blockers: other sessions' query literals kept out of output and journal (#16.7),
concurrent index builds that must honour the operator's limits and name the old snapshots
(#16.9), blockers on tables the statement does not name (#16.10; also #16.19's "blocked by
no blocker found"). Black-box: the console script; lock holders are raw driver sessions."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from support import VENDOR, database_url, fresh_database
from trust_helpers import (
    Project,
    Session,
    byhand,
    example_runbook,
    install_metadata_lock_info,
    journal_rows,
    manage,
    migration_rows,
    probe_at_0001,
    probe_project,
    session,
    wait_until,
)

pytestmark = pytest.mark.needs_server

SECRET = "sk_live_51H8trustprobeSECRETkey"


def needs_sessions() -> None:
    if VENDOR == "sqlite":
        pytest.skip("SQLite has one lock for the whole file and no sessions to report or cancel")


# -- #16.7 blockers' query literals ------------------------------------------------------------


def test_a_blockers_query_literals_are_not_printed_or_journaled(tmp_path: Path) -> None:
    """#16.7: a blocker whose query holds a secret literal: apply reports the blocker and its
    query's shape (FROM probe_item) but the literal neither on screen nor in byhand_journal."""
    needs_sessions()
    project = probe_project(tmp_path / "project")
    with fresh_database() as db:
        runbook = probe_at_0001(project, db, tmp_path / "probe-0002.sql")
        query = f"SELECT 'stripe_key={SECRET}' AS k, count(*) FROM probe_item"
        with session(db, application="trust-secret") as blocker:
            blocker.execute("BEGIN")
            blocker.execute("SELECT * FROM probe_item")  # the lock the ALTER TABLE waits for
            if VENDOR == "postgresql":
                blocker.execute(query)  # idle in transaction: pg_stat_activity keeps its last query
                done = byhand("apply", str(runbook), "--database-url", database_url(db), "--max-attempts", "2")
            else:
                # MariaDB shows the query of a running statement only: run it while apply looks.
                install_metadata_lock_info(db)
                pid = blocker.pid()
                query = f"SELECT 'stripe_key={SECRET}' AS k, SLEEP(20) FROM probe_item LIMIT 1"
                running = threading.Thread(target=_ignore_errors, args=(blocker, query))
                running.start()
                try:
                    wait_until(lambda: _is_running(db, pid), what="the blocker's query")
                    done = byhand("apply", str(runbook), "--database-url", database_url(db), "--max-attempts", "2")
                finally:
                    with session(db) as killer:
                        killer.execute(f"KILL QUERY {pid}")
                    running.join(timeout=10)
            blocker.execute("ROLLBACK")
        journal = [f"{row['event']}/{row['status']}" for row in journal_rows(db) if SECRET in str(row)]
    assert done.returncode == 3, done.stderr
    assert "FROM probe_item" in done.stderr, done.stderr  # the blocker is still reported, with its query's shape
    printed = [line[:200] for line in (done.stdout + done.stderr).splitlines() if SECRET in line]
    assert (printed, journal) == ([], []), "the secret was printed and/or journaled (rows listed)"


def _ignore_errors(blocker: Any, sql: str) -> None:
    try:
        blocker.execute(sql)
    except Exception:  # noqa: BLE001 -- KILL QUERY ends it on purpose
        pass


def _is_running(db: dict[str, Any], pid: int) -> bool:
    with session(db) as s:
        rows = s.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s", (pid,))
    return bool(rows and rows[0][0] and "SLEEP" in rows[0][0])


# -- #16.9 concurrent index builds and old snapshots ------------------------------------------------


def _old_snapshot(db: dict[str, Any], table: str) -> Any:
    holder = Session(db, application="trust-old-snapshot")
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder.execute(f"SELECT count(*) FROM {table}")
    return holder


def _apply_within(runbook: Path, db: dict[str, Any], seconds: float, *options: str) -> tuple[Any, float]:
    """apply RUNBOOK, killed after ``seconds``: (the result or None if it was still waiting, elapsed)."""
    began = time.monotonic()
    try:
        done = byhand("apply", str(runbook), "--database-url", database_url(db), *options, timeout=seconds)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - began
    return done, time.monotonic() - began


LIMITS = ("--max-wait", "3s", "--statement-timeout", "3s", "--max-attempts", "3")


@pytest.mark.parametrize("direction", ["create", "drop"])
def test_a_concurrent_index_build_gives_up_within_the_limits_and_names_old_snapshots(
    direction: str, tmp_path: Path
) -> None:
    """#16.9: CREATE (forwards shop.0009) and DROP (backwards) INDEX CONCURRENTLY behind a
    forgotten REPEATABLE READ session, with --max-wait 3s --statement-timeout 3s --max-attempts 3:
    apply gives up within 12 s (exit 3), and the message names the session holding the old
    snapshot (pid, application)."""
    if VENDOR != "postgresql":
        pytest.skip("CONCURRENTLY is PostgreSQL's")
    with fresh_database() as db:
        if direction == "create":
            assert manage(db, "migrate", "shop", "0008", "--verbosity", "0").returncode == 0
            runbook = example_runbook(db, tmp_path / "shop-0009.sql", "shop", "0009")
            table = "shop_author"  # any table: the build waits for every older snapshot
        else:
            assert manage(db, "migrate", "shop", "0009", "--verbosity", "0").returncode == 0
            runbook = example_runbook(db, tmp_path / "shop-0008.sql", "shop", "0008")
            table = "shop_book"  # the drop waits for every transaction that used the table
        assert "CONCURRENTLY" in runbook.read_text()
        holder = _old_snapshot(db, table)
        try:
            done, elapsed = _apply_within(runbook, db, 12, *LIMITS)
            pid = holder.pid()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert done is not None, f"apply still waited after {elapsed:.0f}s with --max-wait 3s"
    assert done.returncode == 3, done.stderr
    assert f"pid {pid}" in done.stderr and "trust-old-snapshot" in done.stderr, done.stderr


# -- #16.10 blockers on tables the statement does not name ------------------------------------------

FK_0001 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Author", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        migrations.CreateModel(
            "Book",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("author", models.ForeignKey(on_delete=models.CASCADE, to="probe.author")),
            ],
        ),
    ]
"""

#: One statement: ALTER TABLE probe_book DROP CONSTRAINT/FOREIGN KEY ..._fk_probe_author_id.
FK_0002 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [
        migrations.AlterField(
            "book", "author", models.ForeignKey(on_delete=models.CASCADE, to="probe.author", db_constraint=False)
        ),
    ]
"""


def _fk_runbook(tmp_path: Path, db: dict[str, Any]) -> Path:
    project = Project(tmp_path / "project", {"probe": {"0001_initial.py": FK_0001, "0002_no_fk.py": FK_0002}})
    project.migrate(db, "probe", "0001")
    runbook = project.runbook(db, tmp_path / "no-fk.sql", "probe", "0002")
    schema = [line for line in runbook.read_text().splitlines() if "ALTER TABLE" in line]
    assert len(schema) == 1 and "probe_book" in schema[0] and "_fk_probe_author_id" in schema[0], schema
    return runbook


def _writer_on_author(db: dict[str, Any]) -> Any:
    """Idle in transaction after writing probe_author (ROW EXCLUSIVE; InnoDB: a write transaction)."""
    writer = Session(db, application="trust-author-writer")
    if VENDOR == "mysql":
        install_metadata_lock_info(db)
    writer.execute("INSERT INTO probe_author (name) VALUES ('x')")
    writer.execute("BEGIN")
    writer.execute("UPDATE probe_author SET name = name")
    return writer


def test_a_blocker_on_the_referenced_table_is_reported(tmp_path: Path) -> None:
    """#16.10 (and #16.19 "blocked by no blocker found"): the DROP of probe_book's foreign key
    waits for a session idle in transaction on probe_author: apply gives up (exit 3) naming that
    session's pid, never "no blocker found"."""
    needs_sessions()
    with fresh_database() as db:
        runbook = _fk_runbook(tmp_path, db)
        writer = _writer_on_author(db)
        try:
            pid = writer.pid()
            done = byhand("apply", str(runbook), "--database-url", database_url(db), "--max-attempts", "2")
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert (f"pid {pid}" in done.stderr, "no blocker found" in done.stdout + done.stderr) == (True, False), (
        done.stdout[-600:] + done.stderr
    )


def test_cancel_blockers_after_acts_on_a_blocker_of_the_referenced_table(tmp_path: Path) -> None:
    """#16.10: with --cancel-blockers-after 1 --terminate-idle-after 0s, that session is
    terminated (printed and journaled) and the migration lands (exit 0)."""
    needs_sessions()
    with fresh_database() as db:
        runbook = _fk_runbook(tmp_path, db)
        writer = _writer_on_author(db)
        try:
            pid = writer.pid()
            done = byhand(
                "apply", str(runbook), "--database-url", database_url(db),
                "--cancel-blockers-after", "1", "--terminate-idle-after", "0s", "--max-attempts", "4",
            )  # fmt: skip
        finally:
            writer.close()
        terminated = [row for row in journal_rows(db) if row["event"] == "blocker-terminated"]
        recorded = migration_rows(db, "probe", "0002_no_fk")
    assert (done.returncode, recorded) == (0, 1), done.stderr
    assert f"terminated the session of pid {pid}" in done.stdout
    assert [str(pid) in (row["detail"] or "") for row in terminated] == [True]


# -- a statement's own parallel workers ---------------------------------------------------------------


def test_a_statement_s_own_parallel_workers_are_not_its_blockers() -> None:
    """PostgreSQL builds an index with parallel workers, which hold the table's lock with the
    build's transaction start: while the build runs, the blockers of its session name no
    session of its own group (they were once listed, and --cancel-blockers-after would have
    cancelled them); another session's transaction on the table still is."""
    if VENDOR != "postgresql":
        pytest.skip("parallel maintenance workers are PostgreSQL's")
    from datetime import timedelta

    from support import target_for

    with fresh_database() as db, session(db, application="trust-build") as build, session(db) as other:
        build.execute("CREATE TABLE slow_item (id integer)")
        build.execute("INSERT INTO slow_item SELECT generate_series(1, 4000)")
        build.execute("ALTER TABLE slow_item SET (parallel_workers = 2)")
        build.execute(
            "CREATE FUNCTION slow_key(integer) RETURNS integer IMMUTABLE PARALLEL SAFE LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN $1; END $$"
        )
        build.execute("SET maintenance_work_mem = '256MB'")
        other_pid = other.execute("SELECT pg_backend_pid()")[0][0]
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM slow_item")  # a transaction on the table, older than the build
        time.sleep(0.05)
        pid = build.execute("SELECT pg_backend_pid()")[0][0]
        worker = threading.Thread(
            target=build.execute, args=("CREATE INDEX slow_item_key ON slow_item (slow_key(id))",)
        )
        worker.start()
        target = target_for(db)
        try:
            workers = "SELECT count(*) FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s"
            wait_until(lambda: target.execute(workers, (pid, pid))[0][0] > 0, what="the build's parallel workers")
            blockers = target.find_blockers(
                waiting_session=pid, tables=["slow_item"], older_than=timedelta(0), snapshots=True
            )
            group = {row[0] for row in target.execute("SELECT pid FROM pg_stat_activity WHERE leader_pid = %s", (pid,))}
        finally:
            target.close()
            worker.join()
            other.execute("ROLLBACK")
    assert len(group) > 1  # the leader and at least one worker
    assert not {blocker.pid for blocker in blockers} & group
    assert other_pid in {blocker.pid for blocker in blockers}
