"""byhand apply running an online runbook's copies through pt-online-schema-change (MariaDB):
migrate's schema and rows, credentials kept out of sight, what a killed or failed copy left
cleaned up, and the refusals before any change."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.test import override_settings

from byhand.exceptions import PreflightRefused
from byhand.runbook import parse_runbook
from byhand.vendors.observing import copy_obstacle
from byhand.vendors.pt_osc import EngineSettings
from support import VENDOR, apply, byhand, database_url, fresh_database, journal_rows, state, target_for, use_database
from trust_helpers import byhand_popen

pytestmark = [pytest.mark.needs_server]

REAL = shutil.which("pt-online-schema-change") or "/usr/bin/pt-online-schema-change"
SCENARIO = {"catalog": "scenarios.online_copy"}
#: For a copy that is not what the test is about (the run after an interrupted one): no pause.
FAST = ("--pt-osc-sleep", "0")


@pytest.fixture(autouse=True)
def _mariadb() -> None:
    if VENDOR != "mysql":
        pytest.skip("pt-online-schema-change is MySQL's and MariaDB's")
    if not os.path.exists(REAL):
        if os.environ.get("CI") == "true":
            pytest.fail("pt-online-schema-change is not installed (percona-toolkit): .ci/run installs it")
        pytest.skip("pt-online-schema-change is not installed (percona-toolkit)")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """The online runbook of scenarios.online_copy 0002 (written against 0001 with rows), and
    the schema and django_migrations rows migrate leaves."""
    if VENDOR != "mysql":
        pytest.skip("pt-online-schema-change is MySQL's and MariaDB's")
    path = tmp_path_factory.mktemp("runbooks") / "0002.sql"
    with override_settings(MIGRATION_MODULES=SCENARIO), fresh_database() as db, use_database("default", db):
        call_command("migrate", "catalog", "0001", verbosity=0)
        call_command("byhand", "sql", "catalog", "--online", "--manual-steps", "-o", str(path))
        call_command("migrate", "catalog", verbosity=0)
        yield path, state(db)


@pytest.fixture
def db() -> Iterator[dict[str, Any]]:
    """A database at catalog 0001, with its rows."""
    with override_settings(MIGRATION_MODULES=SCENARIO), fresh_database() as db, use_database("default", db):
        call_command("migrate", "catalog", "0001", verbosity=0)
        yield db


def _wrapper(tmp_path: Path, body: str) -> Path:
    """A ``pt-online-schema-change`` in its own directory: ``body`` (sh) around the real one."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    path = directory / "pt-online-schema-change"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _rows(db: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    target = target_for(db)
    try:
        return target.execute(sql)
    finally:
        target.close()


def _leftovers(db: dict[str, Any]) -> list[tuple[Any, ...]]:
    return _rows(
        db,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_%' "
        "UNION ALL SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    )


def _defaults_files() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("byhand-pt-osc-*.cnf"))


def _counts(db: dict[str, Any]) -> list[tuple[Any, ...]]:
    return _rows(
        db,
        "SELECT (SELECT COUNT(*) FROM catalog_item), (SELECT SUM(qty) FROM catalog_item), "
        "(SELECT COUNT(*) FROM catalog_tag), (SELECT SUM(item_id) FROM catalog_tag)",
    )


def test_the_copies_leave_migrate_s_schema_with_no_secret_in_sight(
    reference: tuple[Path, Any], db: dict[str, Any], tmp_path: Path
) -> None:
    """Three statements copied by pt-online-schema-change, through a user with a password
    full of quotes: the keys it renamed (the table's own, and its child's) have Django's
    names again, every row is there, nothing is left behind; its progress is reported;
    the password is in no argument and no event, its defaults file is the user's alone
    and gone after."""
    runbook, (schema, recorded) = reference
    password = "p\"a#s s\\w'rd"
    admin = target_for(db)
    try:
        admin.execute("CREATE USER IF NOT EXISTS 'byhand_ptosc'@'%%' IDENTIFIED BY %s", [password])
        admin.execute("ALTER USER 'byhand_ptosc'@'%%' IDENTIFIED BY %s", [password])
        admin.execute(f"GRANT ALL ON `{db['NAME']}`.* TO 'byhand_ptosc'@'%'")
        # What pt-online-schema-change needs to look for replicas (SHOW SLAVE HOSTS, the process list).
        admin.execute("GRANT PROCESS, REPLICATION CLIENT, REPLICATION MASTER ADMIN ON *.* TO 'byhand_ptosc'@'%'")
    finally:
        admin.close()
    before = _counts(db)
    files = set(_defaults_files())
    log = tmp_path / "argv.log"
    # The defaults file is the one F= names in the DSN, the last argument.
    wrapper = _wrapper(
        tmp_path,
        f'for a in "$@"; do echo "arg: $a" >> {log}; done\n'
        f'file=$(echo "$*" | sed -n "s/.*F=\\([^,]*\\),.*/\\1/p"); stat -c "mode: %a" "$file" >> {log}\n'
        f'{REAL} "$@"; rc=$?; echo "exists after: $(test -e "$file" && echo yes || echo no)" >> {log}; exit $rc',
    )
    url = f"mysql://byhand_ptosc:{quote(password, safe='')}@127.0.0.1:3306/{db['NAME']}"
    done = byhand(
        "apply", str(runbook), "--database-url", url, "--json", env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert state(db) == (schema, recorded)
    assert _counts(db) == before
    assert _leftovers(db) == []
    said = log.read_text()
    assert said.count("arg: --execute") == 3
    assert password not in said and password not in done.stdout + done.stderr
    assert said.count("mode: 600") == 3, said
    assert "exists after: yes" in said  # while pt-online-schema-change ran
    assert set(_defaults_files()) <= files
    assert '"progress": "pt-online-schema-change: ' in done.stdout
    notes = [row for row in journal_rows(db) if row[1] == "engine"]
    assert len(notes) == 3


def _bigger(db: dict[str, Any]) -> tuple[Any, list[tuple[Any, ...]]]:
    """100,000 more items, so that a copy lasts long enough to be stopped; the state and counts."""
    _rows(db, "INSERT INTO catalog_item (name, qty, shelf_id) SELECT CONCAT('more ', seq), seq, 1 FROM seq_1_to_100000")
    return state(db), _counts(db)


def _as_it_was_then_resumed(
    runbook: Path, db: dict[str, Any], before: Any, counts: list[tuple[Any, ...]], *, expected: Any
) -> None:
    """After a stopped copy: nothing left behind, the database as ``before``; the next apply
    (no pause between chunks) ends at ``expected`` with every row."""
    assert _leftovers(db) == []
    assert state(db) == before
    done = byhand("apply", str(runbook), "--database-url", database_url(db), *FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert state(db) == expected
    assert _counts(db) == counts


def test_a_copy_killed_midway_is_cleaned_up_and_run_again(
    reference: tuple[Path, Any], db: dict[str, Any], tmp_path: Path
) -> None:
    """apply SIGKILLed while pt-online-schema-change copies: the copy stops too (SIGTERM on
    its parent's death) and leaves its triggers and new table; the next apply drops them,
    triggers first, copies again and ends where migrate ends."""
    runbook, (schema, recorded) = reference
    _, before = _bigger(db)
    pid = tmp_path / "apply.pid"
    wrapper = _wrapper(tmp_path, f'echo $PPID > {pid}\n(sleep 2; kill -KILL $PPID) &\nexec {REAL} "$@"')
    slow = ("--pt-osc-chunk-size", "200", "--pt-osc-sleep", "0.05")
    killed = byhand(
        "apply",
        str(runbook),
        "--database-url",
        database_url(db),
        *slow,
        env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"},
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    # Its credentials' file outlived it: the next run removes it.
    stale = [path for path in _defaults_files() if path.name.startswith(f"byhand-pt-osc-{pid.read_text().strip()}-")]
    assert len(stale) == 1
    for _ in range(50):  # pt-online-schema-change ends on its SIGTERM
        if (
            "pt-online-schema-change"
            not in subprocess.run(["ps", "-eo", "args"], check=False, capture_output=True, text=True).stdout
        ):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    left = sorted(str(row[0]) for row in _leftovers(db))
    assert "_catalog_item_new" in left and any(name.startswith("pt_osc_") for name in left), left
    done = byhand("apply", str(runbook), "--database-url", database_url(db), *FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "its pt-online-schema-change run was cut short: dropped trigger pt_osc_" in done.stdout
    assert state(db) == (schema, recorded)
    assert _counts(db) == before
    assert _leftovers(db) == []
    assert not stale[0].exists()


def test_sigterm_during_the_copy_stops_it_and_leaves_the_table_as_it_was(
    reference: tuple[Path, Any], db: dict[str, Any], tmp_path: Path
) -> None:
    """SIGTERM to apply while pt-online-schema-change copies (what Ctrl-C does too): apply
    stops the copy, drops its triggers and new table, and exits interrupted with the
    migration unrecorded; the next apply runs the whole migration."""
    runbook, (schema, recorded) = reference
    before, counts = _bigger(db)
    wrapper = _wrapper(tmp_path, f'(sleep 2; kill -TERM $PPID) &\nexec {REAL} "$@"')
    stopped = byhand(
        "apply",
        str(runbook),
        "--database-url",
        database_url(db),
        "--pt-osc-chunk-size",
        "200",
        env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"},
    )
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert "interrupted" in stopped.stderr
    _as_it_was_then_resumed(runbook, db, before, counts, expected=(schema, recorded))


def test_apply_piped_into_a_reader_that_goes_away_mid_copy_stops_and_cleans_up(
    reference: tuple[Path, Any], db: dict[str, Any]
) -> None:
    """``byhand apply … --json | head``: the reader goes away while pt-online-schema-change
    copies. apply's next progress line finds its output closed: it stops the copy, drops its
    triggers and new table, and exits interrupted (130) with the migration unrecorded; the
    next apply runs it to migrate's end."""
    runbook, (schema, recorded) = reference
    before, counts = _bigger(db)
    process = byhand_popen(
        "apply", str(runbook), "--database-url", database_url(db), "--json", "--pt-osc-chunk-size", "200"
    )
    assert process.stdout is not None and process.stderr is not None
    for line in process.stdout:  # the reader: until the copy is under way, then gone
        if "copying rows" in line:
            break
    process.stdout.close()
    stopped = process.wait(timeout=120)
    error = process.stderr.read()
    assert stopped == 130, error
    _as_it_was_then_resumed(runbook, db, before, counts, expected=(schema, recorded))


def test_a_row_that_breaks_the_change_fails_the_copy_and_loses_no_row(
    reference: tuple[Path, Any], db: dict[str, Any]
) -> None:
    """A row the new CHECK rejects: pt-online-schema-change fills its copy with INSERT IGNORE,
    which would skip that row; it stops on the warning instead, so the statement fails as
    migrate's ALTER fails (exit 1), every row still in the table, nothing left behind, the
    migration unrecorded. With the row corrected, the same runbook resumes to migrate's end."""
    runbook, (schema, recorded) = reference
    _rows(db, "UPDATE catalog_item SET qty = -7 WHERE id = 250")
    counts = _counts(db)
    failed = byhand("apply", str(runbook), "--database-url", database_url(db))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "CONSTRAINT `item_qty_gte_0` failed" in failed.stderr, failed.stderr
    assert "`catalog_item` is as it was" in failed.stderr, failed.stderr
    assert _counts(db) == counts
    assert _rows(db, "SELECT qty FROM catalog_item WHERE id = 250") == [(-7,)]
    assert _leftovers(db) == []
    assert ("catalog", "0002_copies") not in state(db)[1]
    _rows(db, "UPDATE catalog_item SET qty = 7 WHERE id = 250")
    done = byhand("apply", str(runbook), "--database-url", database_url(db))
    assert done.returncode == 0, done.stdout + done.stderr
    assert state(db) == (schema, recorded)
    assert _leftovers(db) == []


def _table_id(db: dict[str, Any], table: str) -> int:
    """InnoDB's id of ``table``: a copy of the table (ALGORITHM=COPY) gives it a new one."""
    [(table_id,)] = _rows(
        db, f"SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = CONCAT(DATABASE(), '/{table}')"
    )
    return int(table_id)


def test_a_foreign_key_added_through_a_copy_leaves_the_children_uncopied(tmp_path: Path) -> None:
    """AddField of a ForeignKey to item, which tag's key references: MariaDB copies item for
    it, so the online runbook runs it through pt-online-schema-change with foreign_key_checks
    on (the copy's rows checked as migrate's are), and tag's key, re-pointed at the copy, is
    rebuilt with them off: in place (tag keeps its InnoDB table id), not copied under a lock.
    migrate's schema, its keys' names included; nothing left behind."""
    scenario = {"catalog": "scenarios.online_copy_fk"}
    runbook = tmp_path / "0002.sql"
    with override_settings(MIGRATION_MODULES=scenario), fresh_database() as db, use_database("default", db):
        call_command("migrate", "catalog", "0001", verbosity=0)
        call_command("byhand", "sql", "catalog", "--online", "--manual-steps", "-o", str(runbook))
        call_command("migrate", "catalog", verbosity=0)
        expected = state(db)
    copies = [step for block in parse_runbook(runbook.read_text()).blocks for step in block.steps if step.online]
    assert [(step.online["form"], "FOREIGN KEY" in step.sql) for step in copies] == [("copy", True)]
    with override_settings(MIGRATION_MODULES=scenario), fresh_database() as db, use_database("default", db):
        call_command("migrate", "catalog", "0001", verbosity=0)
        tag = _table_id(db, "catalog_tag")
        done = byhand("apply", str(runbook), "--database-url", database_url(db), "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "pt-online-schema-change: Rebuilding foreign key constraints..." in done.stdout
        assert state(db) == expected
        assert _table_id(db, "catalog_tag") == tag
        assert _leftovers(db) == []


def test_a_run_killed_after_the_cut_over_gives_the_keys_their_names_back(
    reference: tuple[Path, Any], db: dict[str, Any], tmp_path: Path
) -> None:
    """apply SIGKILLed the moment pt-online-schema-change has swapped the copy in, before it
    renamed the keys back: the next apply finds the statement done (the table changed), gives
    the keys of the table and of its child their names back from the journal, and records."""
    runbook, (schema, recorded) = reference
    wrapper = _wrapper(tmp_path, f'{REAL} "$@"; kill -KILL $PPID')
    killed = byhand(
        "apply",
        str(runbook),
        "--database-url",
        database_url(db),
        env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"},
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    names = {
        str(row[0])
        for row in _rows(
            db,
            "SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE()",
        )
    }
    assert any(name.startswith("_") for name in names), names  # pt-online-schema-change's names
    done = byhand("apply", str(runbook), "--database-url", database_url(db))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "took effect before the last run ended" in done.stdout
    assert state(db) == (schema, recorded)


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("", "/nonexistent/pt-online-schema-change is not installed (Debian: apt install percona-toolkit)"),
        (
            "CREATE TRIGGER catalog_item_audit AFTER UPDATE ON catalog_item FOR EACH ROW SET @x = 1",
            "pt-online-schema-change cannot copy `catalog_item`, which has triggers of its own (catalog_item_audit)",
        ),
        ("CREATE TABLE _catalog_item_new (id int PRIMARY KEY)", "table _catalog_item_new exist: another"),
        (
            "ALTER TABLE catalog_tag MODIFY id bigint NOT NULL, DROP PRIMARY KEY",
            "pt-online-schema-change cannot copy `catalog_tag`, which has no primary key or unique index",
        ),
    ],
)
def test_what_pt_osc_cannot_run_is_refused_before_any_change(
    reference: tuple[Path, Any], db: dict[str, Any], setup: str, says: str
) -> None:
    """pt-online-schema-change missing, a trigger of someone else's on the table, another
    copy's new table, a table without a key for its triggers: refused at preflight, each
    statement named, nothing changed."""
    runbook, _ = reference
    if setup:
        _rows(db, setup)
    before = state(db)
    executable = "/nonexistent/pt-online-schema-change" if not setup else REAL
    with pytest.raises(PreflightRefused) as refused:
        apply(runbook, db, engine=EngineSettings(executable=executable))
    assert says in str(refused.value)
    assert "catalog.0002_copies statement " in str(refused.value)
    assert state(db) == before


def test_the_rehearsal_notes_what_pt_osc_cannot_copy(db: dict[str, Any]) -> None:
    """A key to itself, no key, triggers of its own, a column's CHECK named after the column's
    former name: what the rehearsal notes under "uncopied" for a COPY (and apply refuses),
    so that --online leaves the statement as Django wrote it."""
    target = target_for(db)
    try:
        for sql in (
            "CREATE TABLE t_self (id int PRIMARY KEY, up int, CONSTRAINT t_up FOREIGN KEY (up) REFERENCES t_self (id))",
            "CREATE TABLE t_bare (x int)",
            "CREATE TABLE t_trig (id int PRIMARY KEY, x int)",
            "CREATE TRIGGER t_trig_audit AFTER UPDATE ON t_trig FOR EACH ROW SET @x = 1",
            "CREATE TABLE t_json (id int PRIMARY KEY, doc_json longtext CHECK (json_valid(doc_json)))",
            "ALTER TABLE t_json RENAME COLUMN doc_json TO doc",
        ):
            target.execute(sql)
        cursor = target.connection.cursor()
        said = {t: copy_obstacle(cursor, t) for t in ("t_self", "t_bare", "t_trig", "t_json", "catalog_item")}
        ignored = copy_obstacle(cursor, "t_trig", ignored=["t_trig_audit"])
    finally:
        target.close()
    assert said == {
        "t_self": "a foreign key to itself (t_up), which the copy's would point at the old table",
        "t_bare": "no primary key or unique index, which its triggers find rows by",
        "t_trig": "triggers of its own (t_trig_audit), beside which it cannot keep its copy in step",
        "t_json": "a column's CHECK named after the column's former name (doc_json), which the copy would rename",
        "catalog_item": None,
    }
    assert ignored is None


def test_apply_without_pt_osc_on_path_exits_2_and_changes_nothing(
    reference: tuple[Path, Any], db: dict[str, Any]
) -> None:
    """The console script, with no pt-online-schema-change on PATH: exit 2 (refused before
    any change), the statement and the way on named, the database as it was."""
    runbook, _ = reference
    before = state(db)
    refused = byhand("apply", str(runbook), "--database-url", database_url(db), env={"PATH": "/nonexistent"})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "preflight refused the runbook (nothing was changed)" in refused.stderr
    assert "catalog.0002_copies statement 1: pt-online-schema-change is not installed" in refused.stderr
    assert "apply a runbook generated without --online" in refused.stderr
    assert state(db) == before
