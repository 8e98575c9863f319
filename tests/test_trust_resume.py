"""Issue 16, data corruption and lying bookkeeping around resuming: re-signing (#16.1), one run
lock per database (#16.2), record/unrecord/run-python during an apply (#16.4), what a stopped
non-atomic migration committed (#16.6). Black-box: the console script and manage.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import VENDOR, database_url, fresh_database
from trust_helpers import (
    PROBE_0001,
    Project,
    Reader,
    bumps,
    byhand,
    byhand_popen,
    holding_probe_item,
    install_metadata_lock_info,
    journal_rows,
    migration_rows,
    probe_at_0001,
    probe_project,
    session,
    wait_until,
)

pytestmark = pytest.mark.needs_server

REVIEWED = " /* reviewed by ops */;"


def stop_after_the_update(project: Project, db: dict[str, Any], runbook: Path) -> subprocess.CompletedProcess[str]:
    """Run probe.0002 until its statement 1 (the UPDATE) committed and statement 2 (the ALTER
    TABLE) did not: a blocker makes apply give up (exit 3); on SQLite, whose one write lock
    would block the UPDATE too, statement 2 fails instead (the column exists: exit 1), and
    the column is dropped again afterwards."""
    if VENDOR == "sqlite":
        with session(db) as s:
            s.execute("ALTER TABLE probe_item ADD COLUMN note varchar(20) NULL")
        done = byhand("apply", str(runbook), "--database-url", database_url(db))
        assert done.returncode == 1, done.stderr
        with session(db) as s:
            s.execute("ALTER TABLE probe_item DROP COLUMN note")
    else:
        if VENDOR == "mysql":
            install_metadata_lock_info(db)
        with holding_probe_item(db):
            done = byhand("apply", str(runbook), "--database-url", database_url(db), "--max-attempts", "2")
        assert done.returncode == 3, done.stderr
    assert bumps(db) == 1
    return done


def edit_statement(runbook: Path, old: str, new: str) -> None:
    text = runbook.read_text()
    assert text.count(old) == 1, old
    runbook.write_text(text.replace(old, new))


def alter_line(runbook: Path) -> str:
    return next(line for line in runbook.read_text().splitlines() if "ADD COLUMN" in line and "note" in line)


def status_line(runbook: Path, db: dict[str, Any], migration: str) -> str:
    done = byhand("status", str(runbook), "--database-url", database_url(db))
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if line.strip().startswith(migration))


@pytest.fixture
def probe(tmp_path: Path) -> tuple[Project, dict[str, Any], Path]:
    project = probe_project(tmp_path / "project")
    with fresh_database() as db:
        yield project, db, probe_at_0001(project, db, tmp_path / "probe-0002.sql")


# -- #16.1 re-signing ------------------------------------------------------------------------


def test_a_resigned_runbook_resumes_where_the_one_it_replaces_stopped(probe: tuple[Project, dict, Path]) -> None:
    """#16.1: after an edit of a later statement and byhand sign, status says partial and the
    committed UPDATE is not run a second time."""
    project, db, runbook = probe
    stop_after_the_update(project, db, runbook)
    line = alter_line(runbook)
    edit_statement(runbook, line, line.rstrip(";") + REVIEWED)
    signed = byhand("sign", str(runbook))
    assert signed.returncode == 0, signed.stderr
    status = status_line(runbook, db, "probe.0002_bump")
    done = byhand("apply", str(runbook), "--database-url", database_url(db))
    assert done.returncode == 0, done.stderr
    assert migration_rows(db, "probe", "0002_bump") == 1
    # Both symptoms in one report: the status before, the UPDATE's runs after.
    assert ("partial" in status.split(), bumps(db)) == (True, 1), f"status said: {status.strip()!r}"


def test_a_resigned_edit_of_a_committed_statement_is_refused_naming_it(probe: tuple[Project, dict, Path]) -> None:
    """#16.1: the edit changed statement 1, which already committed: apply refuses (exit 2),
    says which statement, and runs nothing."""
    project, db, runbook = probe
    stop_after_the_update(project, db, runbook)
    edit_statement(runbook, "SET n = n + 1", "SET n = n + 10")
    assert byhand("sign", str(runbook)).returncode == 0
    done = byhand("apply", str(runbook), "--database-url", database_url(db))
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "probe.0002_bump statement 1" in done.stderr and "already committed" in done.stderr
    assert bumps(db) == 1
    assert migration_rows(db, "probe", "0002_bump") == 0


# -- #16.6 what a stopped migration committed ---------------------------------------------------


def test_giving_up_after_a_committed_statement_says_what_committed(probe: tuple[Project, dict, Path]) -> None:
    """#16.6: exit 3 (or 1) after statement 1 of a non-atomic migration committed: the message
    does not call the migration untouched, it says statement 1 of 2 is committed."""
    project, db, runbook = probe
    done = stop_after_the_update(project, db, runbook)
    assert "untouched" not in done.stderr
    assert "probe.0002_bump: 1 of 3 statement(s) committed" in done.stderr
    assert "partial" in status_line(runbook, db, "probe.0002_bump").split()


def test_status_of_a_rolled_back_atomic_migration_is_not_partial(tmp_path: Path) -> None:
    """#16.6: an atomic migration whose statement 1 failed and was rolled back: status says
    pending (with the failure), never "partial 0 of N statement(s) committed"."""
    project = Project(
        tmp_path / "project",
        {
            "probe": {
                "0001_initial.py": PROBE_0001,
                "0002_more.py": """\
                    from django.db import migrations, models


                    class Migration(migrations.Migration):
                        dependencies = [("probe", "0001_initial")]
                        operations = [
                            migrations.AddField("item", "note", models.CharField(max_length=20, null=True)),
                            migrations.AddField("item", "other", models.IntegerField(null=True)),
                        ]
                    """,
            }
        },
    )
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        runbook = project.runbook(db, tmp_path / "more.sql", "probe", "0002")
        with session(db) as s:
            s.execute("ALTER TABLE probe_item ADD COLUMN note varchar(20) NULL")  # statement 1 will fail
        done = byhand("apply", str(runbook), "--database-url", database_url(db))
        assert done.returncode == 1, done.stderr
        line = status_line(runbook, db, "probe.0002_more")
        assert "partial" not in line and "0 of" not in line, line
        assert line.split()[1] == "pending", line


# -- #16.2 one run lock per database --------------------------------------------------------------


def test_two_applies_with_different_journal_tables_do_not_both_run(probe: tuple[Project, dict, Path]) -> None:
    """#16.2: while apply A (journal A) waits on a lock inside probe.0002, apply B with another
    --journal-table is refused (exit 2, another apply is running) and the UPDATE ran once."""
    _project, db, runbook = probe
    if VENDOR == "mysql":
        install_metadata_lock_info(db)
    url = database_url(db)
    with holding_probe_item(db):
        first = byhand_popen("apply", str(runbook), "--database-url", url, "--journal-table", "journal_a")
        err = Reader(first.stderr)
        err.start()
        try:
            if VENDOR == "sqlite":  # A waits for the write lock before its first write
                # one run lock per database, whatever the journal is called
                wait_until(lambda: Path(db["NAME"] + ".byhand_journal.lock").exists(), what="apply A's run lock")
            else:
                wait_until(lambda: bumps(db) == 1, what="apply A's UPDATE")
            second = byhand(
                "apply", str(runbook), "--database-url", url, "--journal-table", "journal_b",
                "--run-lock-wait", "0.3s", "--max-attempts", "1",
            )  # fmt: skip
        except BaseException:
            first.kill()
            raise
    first.wait(timeout=60)
    err.join(timeout=5)
    if VENDOR == "sqlite":
        for name in ("journal_a", "journal_b"):
            Path(f"{db['NAME']}.{name}.lock").unlink(missing_ok=True)
    # One report for both symptoms: B was let in, and B ran the UPDATE A had committed.
    assert (second.returncode, bumps(db)) == (2, 1), second.stderr
    assert "another byhand apply is running against this database" in second.stderr
    assert first.returncode == 0, err.text
    assert journal_rows(db, "journal_b") == []


# -- #16.4 record, unrecord and run-python take the run lock ---------------------------------------

PROBE2_0001 = """\
import os
from pathlib import Path

from django.db import migrations


def hello(apps, schema_editor):
    Path(os.environ["TRUST_MARK"]).write_text("ran")


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [migrations.RunPython(hello, migrations.RunPython.noop)]
"""

PROBE3_0001 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [migrations.CreateModel("Thing", [("id", models.BigAutoField(primary_key=True))])]
"""


def test_record_unrecord_and_run_python_refuse_while_an_apply_runs(tmp_path: Path) -> None:
    """#16.4: while apply waits on a lock inside probe.0002, record, unrecord and run-python
    (each of them legitimate on their own) are refused with exit 2 naming the running apply;
    afterwards probe.0002 is recorded once, probe3.0001 still, and the Python did not run."""
    project = probe_project(
        tmp_path / "project", probe2={"0001_hello.py": PROBE2_0001}, probe3={"0001_initial.py": PROBE3_0001}
    )
    mark = tmp_path / "ran-python"
    with fresh_database() as db:
        runbook = probe_at_0001(project, db, tmp_path / "probe-0002.sql")
        project.migrate(db, "probe3")
        if VENDOR == "mysql":
            install_metadata_lock_info(db)
        env = {**project.env(db), "TRUST_MARK": str(mark)}
        results: dict[str, subprocess.CompletedProcess[str]] = {}
        with holding_probe_item(db):
            apply = byhand_popen("apply", str(runbook), "--database-url", database_url(db))
            err = Reader(apply.stderr)
            err.start()
            try:
                if VENDOR == "sqlite":
                    wait_until(lambda: Path(db["NAME"] + ".byhand_journal.lock").exists(), what="the run lock")
                else:
                    wait_until(lambda: bumps(db) == 1, what="apply's UPDATE")
                for name, args in {
                    "record": ("record", "probe", "0002_bump"),
                    "unrecord": ("unrecord", "probe3", "0001_initial"),
                    "run-python": ("run-python", "probe2.0001_hello:0"),
                }.items():
                    results[name] = project.manage(db, "byhand", *args, env=env)
            except BaseException:
                apply.kill()
                raise
        apply.wait(timeout=60)
        err.join(timeout=5)
        seen = {
            name: (done.returncode, "another byhand apply is running against this database" in done.stderr)
            for name, done in results.items()
        }
        seen["python ran"] = mark.exists()
        seen["probe.0002 rows"] = migration_rows(db, "probe", "0002_bump")
        seen["probe3.0001 rows"] = migration_rows(db, "probe3", "0001_initial")
        detail = {name: (done.stdout + done.stderr)[-300:] for name, done in results.items()}
        expected = {**{name: (2, True) for name in results}, "python ran": False}
        assert seen == {**expected, "probe.0002 rows": 1, "probe3.0001 rows": 1}, detail
