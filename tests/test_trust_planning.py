"""Issue 16, the planning side found wrong by a new user: run-python runs any step anywhere
(#16.16), and twice, verify misses length changes and prints driver codes (#16.17), the scratch
database's name cannot be given a prefix (#16.18). Black-box: manage.py in subprocesses."""

from __future__ import annotations

import getpass
import json
import re
import secrets
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from support import VENDOR, database_url, fresh_database
from trust_helpers import (
    PROBE_0001,
    Project,
    byhand,
    example_runbook,
    journal_rows,
    manage,
    manage_env,
    scalar,
    session,
)

pytestmark = pytest.mark.needs_server


def migrate(db: dict[str, Any], *args: str) -> None:
    done = manage(db, "migrate", *args, "--verbosity", "0")
    assert done.returncode == 0, done.stderr


def authors(db: dict[str, Any]) -> int:
    return int(scalar(db, "SELECT COUNT(*) FROM shop_author WHERE name = 'Ada'"))


# -- #16.16 run-python runs only the step the database is at ---------------------------------------

STEP = "shop.0007_sql_and_python:3"  # add_first_author (forwards), remove_first_author (backwards)


def test_run_python_refuses_a_step_the_database_is_not_at() -> None:
    """#16.16: the database is at shop.0004; shop.0007's step needs shop.0006 recorded: exit 2,
    the missing dependency named, the function not run."""
    with fresh_database() as db:
        migrate(db, "shop", "0004")
        done = manage(db, "byhand", "run-python", STEP)
        facts = {"exit": done.returncode, "Ada rows": authors(db)}
    assert facts == {"exit": 2, "Ada rows": 0}, done.stdout + done.stderr[-800:]
    assert "shop.0006_indexes_constraints" in done.stderr and "not recorded" in done.stderr, done.stderr


def test_run_python_refuses_forwards_on_a_recorded_migration() -> None:
    """#16.16: shop.0007 is recorded (a backwards run would be at its step): run-python without
    --backwards is the wrong direction: exit 2, --backwards named, the forwards function not run."""
    with fresh_database() as db:
        migrate(db, "shop", "0007")
        assert authors(db) == 1  # migrate ran add_first_author
        done = manage(db, "byhand", "run-python", STEP)
        facts = {"exit": done.returncode, "Ada rows": authors(db)}
    assert facts == {"exit": 2, "Ada rows": 1}, done.stdout + done.stderr[-800:]
    assert "shop.0007_sql_and_python is recorded" in done.stderr and "--backwards" in done.stderr, done.stderr


def test_run_python_refuses_backwards_on_a_migration_not_recorded() -> None:
    """#16.16: shop.0007 is not recorded (a forwards run would be at its step): --backwards is the
    wrong direction: exit 2, the reverse function (which deletes Ada) not run."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        with session(db) as s:
            s.execute("INSERT INTO shop_author (name) VALUES ('Ada')")
        done = manage(db, "byhand", "run-python", STEP, "--backwards")
        facts = {"exit": done.returncode, "Ada rows": authors(db)}
    assert facts == {"exit": 2, "Ada rows": 1}, done.stdout + done.stderr[-800:]
    assert "shop.0007_sql_and_python is not recorded" in done.stderr, done.stderr


ADD = "0007_sql_and_python.add_first_author"
REMOVE = "0007_sql_and_python.remove_first_author"


def test_run_python_refuses_backwards_while_a_dependent_is_recorded() -> None:
    """#16.16: at shop.0008, shop.0007's reverse step is not where a backwards run would be
    (shop.0008 is unapplied first): exit 2, shop.0008 named, the reverse function not run."""
    with fresh_database() as db:
        migrate(db, "shop", "0008")
        done = manage(db, "byhand", "run-python", STEP, "--backwards")
        facts = {"exit": done.returncode, "Ada rows": authors(db)}
    assert facts == {"exit": 2, "Ada rows": 1}, done.stdout + done.stderr[-800:]
    assert done.stderr.strip() == (
        f"CommandError: refusing to run {STEP} backwards: migrations that depend on it are recorded: "
        "shop.0008_author_bigautofield. Nothing was run. If the database really is at that step, run again "
        "with --force REASON (the reason is kept in byhand_journal)."
    )


SQUASHED_HELLO = """\
from django.db import migrations, models


def hello(apps, schema_editor):
    apps.get_model("probe", "Item")


class Migration(migrations.Migration):
    replaces = [("probe", "0001_initial"), ("probe", "0002_hello")]
    operations = [
        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))]),
        migrations.RunPython(hello, migrations.RunPython.noop),
    ]
"""

HELLO_0002 = SQUASHED_HELLO.replace(
    '    replaces = [("probe", "0001_initial"), ("probe", "0002_hello")]',
    '    dependencies = [("probe", "0001_initial")]',
).replace('        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))]),\n', "")


def test_run_python_refuses_a_step_of_a_migration_a_squash_replaces(tmp_path: Path) -> None:
    """#16.16: nothing recorded, so migrate would run the squash: the replaced migration's step is
    refused naming the squash (it was a KeyError traceback); the squash's own step runs."""
    migrations = {
        "0001_initial.py": PROBE_0001,
        "0002_hello.py": HELLO_0002,
        "0001_squashed_0002_hello.py": SQUASHED_HELLO,
    }
    project = Project(tmp_path / "project", {"probe": migrations})
    with fresh_database() as db:
        replaced = project.manage(db, "byhand", "run-python", "probe.0002_hello:0")
        squash = project.manage(db, "byhand", "run-python", "probe.0001_squashed_0002_hello:1")
        rows = run_python_rows(db)
    assert (replaced.returncode, squash.returncode) == (2, 0), replaced.stderr[-800:] + squash.stderr[-800:]
    assert replaced.stderr.strip() == (
        "CommandError: probe.0002_hello is replaced by probe.0001_squashed_0002_hello, which migrate runs instead "
        "on this database: its steps never run here; run the squash's step, as the runbook names it (nothing was "
        "run)."
    )
    assert [row[:3] for row in rows] == [
        ("started", "probe.0001_squashed_0002_hello", 1),
        ("done", "probe.0001_squashed_0002_hello", 1),
    ]


def run_python_rows(db: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The journal's run-python rows: status, migration, step number, detail's facts, error."""
    rows = []
    for row in journal_rows(db):
        if row["event"] == "run-python":
            detail = json.loads(row["detail"])
            facts = (detail["direction"], detail["reason"], detail.get("overridden"), detail.get("ran"))
            rows.append((row["status"], row["migration"], row["statement_index"], *facts, row["error"]))
    return rows


def test_run_python_runs_the_step_the_database_is_at_and_journals_it() -> None:
    """#16.16: at shop.0006 the forwards step runs; at shop.0007 its --backwards step runs. Each
    run is journaled: started, then done with what ran."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        forwards = manage(db, "byhand", "run-python", STEP)
        added = authors(db)
        migrate(db, "shop", "0007", "--fake")
        backwards = manage(db, "byhand", "run-python", STEP, "--backwards")
        facts = {"exits": (forwards.returncode, backwards.returncode), "Ada rows": (added, authors(db))}
        rows = run_python_rows(db)
    assert facts == {"exits": (0, 0), "Ada rows": (1, 0)}, forwards.stderr[-800:] + backwards.stderr[-800:]
    assert f"ran shop.migrations.{ADD}" in forwards.stdout and f"ran shop.migrations.{REMOVE}" in backwards.stdout
    migration = "shop.0007_sql_and_python"
    assert rows == [
        ("started", migration, 3, "forwards", None, [], None, None),
        ("done", migration, 3, "forwards", None, None, [f"shop.migrations.{ADD}"], None),
        ("started", migration, 3, "backwards", None, [], None, None),
        ("done", migration, 3, "backwards", None, None, [f"shop.migrations.{REMOVE}"], None),
    ]


def test_run_python_force_runs_it_anyway_and_journals_the_reason() -> None:
    """#16.16: --force REASON runs a step the database is not at: the reason and what it
    overrode are journaled with the run (forced, then done)."""
    with fresh_database() as db:
        migrate(db, "shop", "0004")
        done = manage(db, "byhand", "run-python", STEP, "--force", "restoring Ada by hand")
        facts = {"exit": done.returncode, "Ada rows": authors(db)}
        rows = run_python_rows(db)
    assert facts == {"exit": 0, "Ada rows": 1}, done.stderr[-800:]
    overridden = ["its dependencies are not recorded: shop.0006_indexes_constraints"]
    reason = "restoring Ada by hand"
    migration = "shop.0007_sql_and_python"
    assert rows == [
        ("forced", migration, 3, "forwards", reason, overridden, None, None),
        ("done", migration, 3, "forwards", reason, None, [f"shop.migrations.{ADD}"], None),
    ]


def test_run_python_force_gives_the_historical_models_of_the_graph() -> None:
    """--force is for a database whose django_migrations is wrong (the schema changed by hand,
    the rows repaired later): the function gets the models of the graph just before the
    migration, not of what is recorded (a break-it trial: with no shop row recorded, the
    forced run died with LookupError 'shop'). An empty reason is refused."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        with session(db) as s:
            s.execute("DELETE FROM django_migrations WHERE app = 'shop'")
        empty = manage(db, "byhand", "run-python", STEP, "--force", "  ")
        done = manage(db, "byhand", "run-python", STEP, "--force", "rows lost in a restore")
        facts = {"empty": empty.returncode, "exit": done.returncode, "Ada rows": authors(db)}
    assert facts == {"empty": 2, "exit": 0, "Ada rows": 1}, empty.stderr[-400:] + done.stderr[-800:]
    assert "--force needs a reason" in empty.stderr


FAILING_0002 = """from django.db import migrations


def fail(apps, schema_editor):
    raise ValueError("no price list")


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [migrations.RunPython(fail, migrations.RunPython.noop)]
"""


INTERRUPTED_0002 = """\
import os
import signal
import time

from django.db import migrations


def stop(apps, schema_editor):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [migrations.RunPython(stop, migrations.RunPython.noop)]
"""


def test_a_step_stopped_by_sigterm_is_journaled_as_interrupted(tmp_path: Path) -> None:
    """#16.16: SIGTERM while the function runs: the journal says started, then interrupted (SIGTERM)."""
    project = Project(
        tmp_path / "project", {"probe": {"0001_initial.py": PROBE_0001, "0002_stop.py": INTERRUPTED_0002}}
    )
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        done = project.manage(db, "byhand", "run-python", "probe.0002_stop:0")
        rows = run_python_rows(db)
    assert done.returncode != 0 and "interrupted (SIGTERM)" in done.stderr, done.stderr[-800:]
    assert rows == [
        ("started", "probe.0002_stop", 0, "forwards", None, [], None, None),
        ("interrupted", "probe.0002_stop", 0, "forwards", None, None, [], "SIGTERM"),
    ]


def test_a_failing_step_is_journaled_as_failed(tmp_path: Path) -> None:
    """#16.16: the function raises: the journal says started, then failed with the error."""
    project = Project(tmp_path / "project", {"probe": {"0001_initial.py": PROBE_0001, "0002_fail.py": FAILING_0002}})
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        done = project.manage(db, "byhand", "run-python", "probe.0002_fail:0")
        rows = run_python_rows(db)
    assert done.returncode != 0 and "no price list" in done.stderr, done.stderr[-800:]
    assert rows == [
        ("started", "probe.0002_fail", 0, "forwards", None, [], None, None),
        ("failed", "probe.0002_fail", 0, "forwards", None, None, [], "ValueError: no price list"),
    ]


# -- run-python run twice: the second run repeats the data migration -------------------------------

OPERATOR = f"{getpass.getuser()}@{socket.gethostname()}"


def done_at(row: dict[str, Any]) -> str:
    """A journal row's finished_at as run-python's refusal quotes it: UTC, to the second."""
    value = row["finished_at"]
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def already_ran(row: dict[str, Any]) -> str:
    """What the refusal and the forced row say of the forwards run that is done."""
    return f"it already ran forwards, done at {done_at(row)} by {OPERATOR}"


def test_run_python_refuses_a_step_already_done_in_that_direction() -> None:
    """The same run-python again (shell history, a second operator): refused (exit 2) naming the
    step, when and by whom it ran and what to do; the function ran once, nothing was journaled."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        first = manage(db, "byhand", "run-python", STEP)
        before = journal_rows(db)
        again = manage(db, "byhand", "run-python", STEP)
        new_rows = len(journal_rows(db)) - len(before)
        facts = {"exits": (first.returncode, again.returncode), "Ada rows": authors(db), "new rows": new_rows}
    assert facts == {"exits": (0, 2), "Ada rows": 1, "new rows": 0}, first.stderr[-800:] + again.stderr[-800:]
    assert again.stderr.strip() == (
        f"CommandError: refusing to run {STEP} forwards: {already_ran(before[-1])}, and nothing has run it "
        "backwards since. Nothing was run. Its work is in the database: go on with byhand apply RUNBOOK "
        f"--manual-step-done {STEP}. To run it again on purpose, run again with --force REASON (the reason is "
        "kept in byhand_journal)."
    )


def test_run_python_force_runs_a_done_step_again_and_journals_the_reason() -> None:
    """--force REASON runs a step that is done again: journaled forced, with the reason and the
    earlier run it overrode, then done."""
    reason = "Ada deleted by hand after the first run"
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        first = manage(db, "byhand", "run-python", STEP)
        with session(db) as s:
            s.execute("DELETE FROM shop_author WHERE name = 'Ada'")
        forced = manage(db, "byhand", "run-python", STEP, "--force", reason)
        facts = {"exits": (first.returncode, forced.returncode), "Ada rows": authors(db)}
        rows, done = run_python_rows(db), journal_rows(db)[1]
    assert facts == {"exits": (0, 0), "Ada rows": 1}, first.stderr[-800:] + forced.stderr[-800:]
    migration, ran = "shop.0007_sql_and_python", [f"shop.migrations.{ADD}"]
    assert rows == [
        ("started", migration, 3, "forwards", None, [], None, None),
        ("done", migration, 3, "forwards", None, None, ran, None),
        ("forced", migration, 3, "forwards", reason, [already_ran(done)], None, None),
        ("done", migration, 3, "forwards", reason, None, ran, None),
    ]


FAIL_ONCE_0002 = """\
import os

from django.db import migrations


def add_item(apps, schema_editor):
    apps.get_model("probe", "Item").objects.using(schema_editor.connection.alias).create(n=1)
    if os.environ.get("PROBE_FAIL"):
        raise ValueError("no price list")


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [migrations.RunPython(add_item, migrations.RunPython.noop)]
"""


def test_a_step_that_failed_may_run_again(tmp_path: Path) -> None:
    """A run that failed is no reason to refuse the next: it runs, and only then is the step
    done. The row it wrote before failing is rolled back on every vendor: on MariaDB, as
    migrate does, the RunPython has a transaction of its own (it had none, and the row stayed)."""
    project = Project(
        tmp_path / "project", {"probe": {"0001_initial.py": PROBE_0001, "0002_fail_once.py": FAIL_ONCE_0002}}
    )
    step = "probe.0002_fail_once:0"
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        failed = project.manage(db, "byhand", "run-python", step, env={**project.env(db), "PROBE_FAIL": "1"})
        left = int(scalar(db, "SELECT COUNT(*) FROM probe_item"))
        again = project.manage(db, "byhand", "run-python", step)
        third = project.manage(db, "byhand", "run-python", step)
        items = (left, int(scalar(db, "SELECT COUNT(*) FROM probe_item")))
        facts = {"exits": (failed.returncode, again.returncode, third.returncode), "items": items}
        statuses = [row[0] for row in run_python_rows(db)]
    expected = {"exits": (1, 0, 2), "items": (0, 1)}
    assert facts == expected, failed.stderr[-400:] + again.stderr[-400:] + third.stderr[-400:]
    assert statuses == ["started", "failed", "started", "done"]
    assert f"refusing to run {step} forwards: it already ran forwards" in third.stderr, third.stderr[-800:]


def test_a_step_run_backwards_since_may_run_forwards_again() -> None:
    """Forwards, then --backwards (done), then forwards again: allowed, the latest done run is
    backwards; a fourth run, forwards again, is refused."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        runs = [manage(db, "byhand", "run-python", STEP)]
        migrate(db, "shop", "0007", "--fake")
        runs.append(manage(db, "byhand", "run-python", STEP, "--backwards"))
        migrate(db, "shop", "0006", "--fake")
        runs.append(manage(db, "byhand", "run-python", STEP))
        added = authors(db)
        runs.append(manage(db, "byhand", "run-python", STEP))
        facts = {"exits": [done.returncode for done in runs], "Ada rows": (added, authors(db))}
    assert facts == {"exits": [0, 0, 0, 2], "Ada rows": (1, 1)}, "".join(done.stderr[-400:] for done in runs)


FILL = "shop.0007_sql_and_python:4"  # fill_pages; its reverse is a no-op, so no backwards step


def test_a_step_may_run_again_once_apply_moved_the_database_across_its_migration(tmp_path: Path) -> None:
    """A step whose reverse is a no-op has no backwards run: once apply has recorded its migration
    and a backwards runbook unrecorded it, the database is before the step again and it runs
    forwards again; once more is refused."""
    with fresh_database() as db:
        migrate(db, "shop", "0006")
        forwards = example_runbook(db, tmp_path / "forwards.sql", "shop", "0007")
        url = database_url(db)
        steps = [
            byhand("apply", str(forwards), "--database-url", url),
            manage(db, "byhand", "run-python", STEP),
            byhand("apply", str(forwards), "--database-url", url, "--manual-step-done", STEP),
            manage(db, "byhand", "run-python", FILL),
            byhand("apply", str(forwards), "--database-url", url, "--manual-step-done", FILL),
        ]
        backwards = example_runbook(db, tmp_path / "backwards.sql", "shop", "0006")
        steps += [
            byhand("apply", str(backwards), "--database-url", url),
            manage(db, "byhand", "run-python", STEP, "--backwards"),
            byhand("apply", str(backwards), "--database-url", url, "--manual-step-done", STEP),
            manage(db, "byhand", "run-python", FILL),
            manage(db, "byhand", "run-python", FILL),
        ]
    exits = [done.returncode for done in steps]
    assert exits == [4, 0, 4, 0, 0, 4, 0, 0, 0, 2], "".join(done.stderr[-400:] for done in steps)
    assert f"refusing to run {FILL} forwards: it already ran forwards" in steps[-1].stderr


# -- #16.17 verify compares and prints types as the database names them ----------------------------

WIDEN = {
    "postgresql": [
        "ALTER TABLE shop_author ALTER COLUMN name TYPE varchar(150)",
        "ALTER TABLE shop_book ALTER COLUMN pages TYPE bigint",
    ],
    "mysql": [
        "ALTER TABLE shop_author MODIFY name varchar(150) NOT NULL",
        "ALTER TABLE shop_book MODIFY pages bigint NULL",
    ],
}

#: The types as each database names them (MariaDB may add its display width).
EXPECTED_TYPES = {
    "postgresql": (r"varchar\(150\)", r"varchar\(100\)", r"bigint", r"integer"),
    "mysql": (r"varchar\(150\)", r"varchar\(100\)", r"bigint(\(20\))?", r"int(\(11\))?"),
    "sqlite": (r"varchar\(150\)", r"varchar\(100\)", r"bigint", r"integer"),
}


def _widen(db: dict[str, Any]) -> None:
    """name varchar(100) -> varchar(150), pages integer -> bigint, behind Django's back."""
    with session(db) as s:
        if VENDOR != "sqlite":
            for sql in WIDEN[VENDOR]:
                s.execute(sql)
            return
        # SQLite has no ALTER COLUMN; its declared types live in sqlite_master.
        s.execute("PRAGMA writable_schema = ON")
        for table, old, new in (
            ("shop_author", '"name" varchar(100)', '"name" varchar(150)'),
            ("shop_book", '"pages" integer', '"pages" bigint'),
        ):
            sql = s.execute("SELECT sql FROM sqlite_master WHERE name = %s", (table,))[0][0]
            assert old in sql, sql
            s.execute("UPDATE sqlite_master SET sql = %s WHERE name = %s", (sql.replace(old, new), table))
        s.execute("PRAGMA writable_schema = OFF")


def test_verify_reports_length_and_type_changes_by_their_database_names() -> None:
    """#16.17: varchar(150) where the migrations say varchar(100), bigint where they say integer:
    verify exits 1 and names both with the types the database uses, length included (no driver
    codes such as '20' and '23')."""
    with fresh_database() as db:
        migrate(db, "shop", "0004")
        _widen(db)
        done = manage(db, "byhand", "verify")
    wider, narrow, big, small = EXPECTED_TYPES[VENDOR]
    found = {
        "name": bool(
            re.search(
                rf"changed: shop_author column name: type is '?{wider}'?, migrations say '?{narrow}'?",
                done.stdout,
                re.I,
            )
        ),
        "pages": bool(
            re.search(
                rf"changed: shop_book column pages: type is '?{big}'?, migrations say '?{small}'? \(", done.stdout, re.I
            )
        ),
        "driver codes": bool(re.search(r"type is '?\d+'?,", done.stdout)),
        "exit": done.returncode,
    }
    assert found == {"name": True, "pages": True, "driver codes": False, "exit": 1}, done.stdout + done.stderr[-800:]


# -- #16.18 the scratch database's name prefix ----------------------------------------------------

PREFIX = "trustpfx_"


@pytest.fixture
def limited_role() -> Iterator[dict[str, str]]:
    """A role that may create only databases named trustpfx_… (MariaDB: a grant on that
    pattern and on the target), or, on PostgreSQL (which cannot grant by name), a role
    without CREATEDB at all, whose refusal shows the name byhand tried."""
    if VENDOR == "sqlite":
        pytest.skip("SQLite's scratch copy is a temporary file")
    name = f"trust_{secrets.token_hex(3)}"
    with fresh_database() as db:
        migrate(db, "shop", "0003")
        with session(db) as s:
            if VENDOR == "mysql":
                s.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw'")
                s.execute(f"GRANT ALL ON `{db['NAME']}`.* TO '{name}'@'%'")
                s.execute(f"GRANT ALL ON `{PREFIX.replace('_', chr(92) + '_')}%`.* TO '{name}'@'%'")
            else:
                s.execute(f"CREATE ROLE {name} LOGIN NOCREATEDB")
                s.execute(f"GRANT ALL ON SCHEMA public TO {name}")
                s.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
        scheme, port = ("mysql", 3306) if VENDOR == "mysql" else ("postgres", 5432)
        password = ":pw" if VENDOR == "mysql" else ""
        try:
            yield {"url": f"{scheme}://{name}{password}@127.0.0.1:{port}/{db['NAME']}", "db": db["NAME"]}
        finally:
            with session(db) as s:
                if VENDOR == "mysql":
                    s.execute(f"DROP USER '{name}'@'%'")
                else:
                    s.execute(f"REVOKE ALL ON SCHEMA public FROM {name}")
                    s.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}")
            if VENDOR == "postgresql":
                with session({**db, "NAME": "postgres"}) as s:
                    s.execute(f"DROP ROLE {name}")


def _sql_as(role: dict[str, str], tmp_path: Path, *options: str, setting: bool) -> Any:
    """manage.py byhand sql shop 0004 as the limited role: the example's settings, plus the
    prefix setting when ``setting``."""
    folder = tmp_path / "settings"
    folder.mkdir()
    (folder / "trustsettings.py").write_text(
        "from exampleproject.settings import *  # noqa: F403\n"
        + (f"BYHAND_SCRATCH_PREFIX = {PREFIX!r}\n" if setting else "")
    )
    env = {**manage_env({"NAME": role["db"]}, module="trustsettings", path=folder), "DATABASE_URL": role["url"]}
    return manage({}, "byhand", "sql", "shop", "0004", "-o", str(tmp_path / "runbook.sql"), *options, env=env)


@pytest.mark.parametrize("how", ["setting", "option"])
def test_the_scratch_database_takes_the_configured_prefix(
    how: str, limited_role: dict[str, str], tmp_path: Path
) -> None:
    """#16.18: BYHAND_SCRATCH_PREFIX = 'trustpfx_' (or --scratch-prefix trustpfx_): MariaDB, a
    user allowed only trustpfx_% databases writes the runbook (exit 0); PostgreSQL, a role
    without CREATEDB is refused naming a database 'trustpfx_…' (the name byhand tried)."""
    options = ("--scratch-prefix", PREFIX) if how == "option" else ()
    done = _sql_as(limited_role, tmp_path, *options, setting=how == "setting")
    if VENDOR == "mysql":
        assert done.returncode == 0, done.stderr[-800:]
        assert (tmp_path / "runbook.sql").exists()
    else:
        assert done.returncode == 1, done.stderr[-800:]
        assert f"could not create the scratch database '{PREFIX}" in done.stderr, done.stderr[-800:]
