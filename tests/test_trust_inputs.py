"""Issue 16, input byhand must refuse or write safely: metadata that contradicts the SQL
(#16.5), passwords echoed from an ambiguous URL (#16.8), an unreachable database for the
planning-side commands (#16.12), non-UTF-8 and huge runbooks (#16.14), names that break out
of a comment (#16.15). Black-box: the console script and manage.py in subprocesses."""

from __future__ import annotations

import hashlib
import resource
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import VENDOR, database_url, fresh_database
from trust_helpers import (
    BIN,
    EXAMPLE,
    PROBE_0001,
    Project,
    byhand,
    clean_env,
    example_runbook,
    manage,
    migration_rows,
    resign,
    run_with_vendor_cli,
    table_exists,
)

pytestmark = pytest.mark.needs_server


@pytest.fixture(scope="module")
def shop_0004(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's runbook for shop 0004 on a database at shop 0003 (made on a database
    dropped afterwards; each test migrates its own to shop 0003)."""
    with fresh_database() as db:
        migrated = manage(db, "migrate", "shop", "0003", "--verbosity", "0")
        assert migrated.returncode == 0, migrated.stderr
        return example_runbook(db, tmp_path_factory.mktemp("inputs") / "shop-0004.sql", "shop", "0004")


def at_shop_0003(db: dict[str, Any]) -> None:
    migrated = manage(db, "migrate", "shop", "0003", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr


def one_line(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- #16.5 metadata that contradicts the SQL ---------------------------------------------------

RECORDS = '"records": [["shop", "0004_book_changes"]]'
LIE = '"records": [["shop", "0003_rename_unnamed_index"]]'


def test_sign_refuses_records_that_contradict_the_insert(shop_0004: Path, tmp_path: Path) -> None:
    """#16.5: the block of shop.0004 claims to record shop.0003 while its INSERT records
    shop.0004: byhand sign refuses (exit 2), names the block and both names, writes nothing."""
    edited = tmp_path / "edited.sql"
    text = shop_0004.read_text()
    assert text.count(RECORDS) == 1
    edited.write_text(text.replace(RECORDS, LIE))
    before = edited.read_text()
    done = byhand("sign", str(edited))
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "shop.0004_book_changes" in done.stderr and "0003_rename_unnamed_index" in done.stderr
    assert "records" in done.stderr
    assert edited.read_text() == before


def test_a_forged_checksum_does_not_make_contradicting_records_trusted(shop_0004: Path, tmp_path: Path) -> None:
    """#16.5: the same lie with a checksum that matches (the README says how it is made): inspect,
    status and apply refuse (exit 2); apply does not skip shop.0004 as "already recorded"."""
    forged = tmp_path / "forged.sql"
    forged.write_text(resign(shop_0004.read_text().replace(RECORDS, LIE)))
    with fresh_database() as db:
        at_shop_0003(db)
        url = database_url(db)
        results = {
            "inspect": byhand("inspect", str(forged)),
            "status": byhand("status", str(forged), "--database-url", url),
            "apply": byhand("apply", str(forged), "--database-url", url),
        }
        seen = {name: (done.returncode, "shop.0004_book_changes" in done.stderr) for name, done in results.items()}
        assert seen == {name: (2, True) for name in results}, {k: v.stdout[-300:] for k, v in results.items()}
        assert "already recorded" not in results["apply"].stdout
        assert migration_rows(db, "shop", "0004_book_changes") == 0


def test_a_forged_atomic_flag_is_refused(shop_0004: Path, tmp_path: Path) -> None:
    """#16.5: the block of shop.0004 has BEGIN/COMMIT but its marker says "atomic": false
    (checksum matching): inspect refuses it (exit 2) naming the block."""
    if VENDOR == "mysql":
        pytest.skip("MySQL/MariaDB runbooks have no BEGIN/COMMIT that the flag could contradict")
    text = shop_0004.read_text()
    marker = next(line for line in text.splitlines() if '"migration": "shop.0004_book_changes"' in line)
    assert '"atomic": true' in marker
    forged = tmp_path / "forged.sql"
    forged.write_text(resign(text.replace(marker, marker.replace('"atomic": true', '"atomic": false'))))
    done = byhand("inspect", str(forged))
    assert done.returncode == 2, done.stdout
    assert "shop.0004_book_changes" in done.stderr and "atomic" in done.stderr


# -- #16.8 passwords in ambiguous URLs ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:12345/abcSECRET@127.0.0.1:5432/db",
        "mysql://u:12345/abcSECRET@127.0.0.1:3306/db",
        "postgres://u:pa@ss/abcSECRET@127.0.0.1/db",
    ],
)
def test_an_ambiguous_url_is_refused_without_echoing_it(shop_0004: Path, url: str) -> None:
    """#16.8: a password holding an unencoded '/' or '@': apply and status refuse (exit 2)
    without echoing any of the URL's secret part, and say how to percent-encode."""
    outputs = {
        "apply": byhand("apply", str(shop_0004), "--database-url", url),
        "status": byhand("status", str(shop_0004), "--database-url", url),
        "apply (env)": byhand("apply", str(shop_0004), env=clean_env(BYHAND_DATABASE_URL=url)),
    }
    for name, done in outputs.items():
        everything = done.stdout + done.stderr
        assert (name, done.returncode, "SECRET" in everything) == (name, 2, False), everything
        assert "percent-encode" in done.stderr and "%2F" in done.stderr, done.stderr


# -- #16.12 planning-side commands on an unreachable database -------------------------------------


def _unreachable() -> str:
    return {
        "postgresql": "postgres://postgres@127.0.0.1:1/byhand_nowhere",
        "mysql": "mysql://root@127.0.0.1:1/byhand_nowhere",
        "sqlite": "sqlite:////nonexistent-byhand-dir/db.sqlite3",
    }[VENDOR]


@pytest.mark.parametrize(
    "args",
    [
        ("verify",),
        ("record", "shop", "0001_initial"),
        ("unrecord", "shop", "0001_initial"),
        ("run-python", "shop.0007_sql_and_python:3"),
        ("post-migrate",),
    ],
    ids=lambda args: args[0],
)
def test_an_unreachable_database_is_one_message(args: tuple[str, ...]) -> None:
    """#16.12: every manage.py byhand command on an unreachable database: one message saying it
    cannot connect, no traceback, exit 2 (verify: 2, since 1 means drift)."""
    env = clean_env(
        DJANGO_SETTINGS_MODULE="exampleproject.settings", PYTHONPATH=str(EXAMPLE), DATABASE_URL=_unreachable()
    )
    done = manage({}, "byhand", *args, env=env)
    facts = {"exit": done.returncode, "traceback": "Traceback" in done.stderr, "lines": len(one_line(done.stderr))}
    assert facts == {"exit": 2, "traceback": False, "lines": 1}, done.stderr[-600:]
    assert "cannot connect" in done.stderr


# -- #16.14 non-UTF-8, binary and huge runbooks ---------------------------------------------------


@pytest.fixture
def latin1_runbook(shop_0004: Path, tmp_path: Path) -> Path:
    """The runbook with one comment in Latin-1 (a reviewer's editor), checksum matching its bytes."""
    path = tmp_path / "latin1.sql"
    text = resign(shop_0004.read_text().replace("-- Add field pages to book", "-- Add field pages to book (vérifié)"))
    path.write_bytes(text.encode("latin-1"))
    return path


@pytest.mark.parametrize("kind", ["binary", "latin-1"])
@pytest.mark.parametrize("command", ["inspect", "sign", "apply", "status"])
def test_a_file_that_is_not_utf8_is_refused(command: str, kind: str, latin1_runbook: Path, tmp_path: Path) -> None:
    """#16.14: a binary file or a Latin-1 runbook given to inspect, sign, apply, status: exit 2,
    one message saying it is not UTF-8 text, no traceback, the file untouched."""
    if kind == "binary":
        path = tmp_path / "runbook.sql"
        path.write_bytes(bytes(range(256)) * 64)
    else:
        path = latin1_runbook
    before = path.read_bytes()
    with fresh_database() as db:
        url = ["--database-url", database_url(db)] if command in ("apply", "status") else []
        done = byhand(command, str(path), *url)
    facts = {"exit": done.returncode, "traceback": "Traceback" in done.stderr, "lines": len(one_line(done.stderr))}
    assert facts == {"exit": 2, "traceback": False, "lines": 1}, done.stderr[-600:]
    assert f"byhand: {path}: not UTF-8 text" in done.stderr
    assert path.read_bytes() == before


def write_padded(source: Path, path: Path, *, lines: int) -> None:
    """``source`` with ``lines`` comment lines of 81 bytes added inside its first block, checksum
    matching, written and hashed piece by piece (the test itself stays small)."""
    text = source.read_text()
    body = text.rstrip("\n").rpartition("\n")[0] + "\n"
    head, mark, rest = body.partition("-- Add field pages to book\n")
    assert mark, "the runbook of shop 0004 starts with AddField pages"
    digest = hashlib.sha256()
    chunk = ("-- " + "x" * 77 + "\n") * 10_000
    with path.open("w") as stream:

        def write(piece: str) -> None:
            stream.write(piece)
            digest.update(piece.encode())

        write(head)
        for _ in range(lines // 10_000):
            write(chunk)
        write(mark + rest)
        stream.write(f"-- byhand checksum: sha256:{digest.hexdigest()}\n")


def test_a_padded_runbook_is_valid(shop_0004: Path, tmp_path: Path) -> None:
    """#16.14 (premise of the next test, passes today): padding with comment lines keeps a runbook valid."""
    path = tmp_path / "padded.sql"
    write_padded(shop_0004, path, lines=20_000)
    done = byhand("inspect", str(path))
    assert done.returncode == 0, done.stderr


def test_a_huge_runbook_is_refused_or_read_in_bounded_memory(shop_0004: Path, tmp_path: Path) -> None:
    """#16.14: a 300 MB runbook (valid, checksum matching) given to inspect with 1 GB of address
    space: either refused at once for its size (exit 2, the limit named) or inspected within
    that memory (exit 0); never a MemoryError or a traceback."""
    path = tmp_path / "huge.sql"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        write_padded(shop_0004, path, lines=3_710_000)  # 300 MB
        assert path.stat().st_size > 300_000_000
        done = subprocess.run(
            [str(BIN / "byhand"), "inspect", str(path)],
            capture_output=True,
            text=True,
            env=clean_env(),
            preexec_fn=limit,
            timeout=300,
            check=False,
        )
    finally:
        path.unlink(missing_ok=True)
    facts = {
        "exit": done.returncode,
        "traceback": "Traceback" in done.stderr,
        "MemoryError": "MemoryError" in done.stderr,
    }
    assert facts in (
        {"exit": 2, "traceback": False, "MemoryError": False},
        {"exit": 0, "traceback": False, "MemoryError": False},
    ), done.stderr[-600:]
    if done.returncode == 2:
        assert "larger than" in done.stderr and "MB" in done.stderr, done.stderr
    else:
        assert "shop.0004_book_changes" in done.stdout


# -- #16.15 names and descriptions that would break out of a comment ------------------------------

NEWLINE_NAME = "0002_nl\nCREATE TABLE injected_by_name (id int);--"

NEWLINE_MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [migrations.AddField("item", "note", models.CharField(max_length=20, null=True))]
"""

DESCRIBED_MIGRATION = """\
from django.db import migrations, models


class Backfill(migrations.RunSQL):
    def describe(self):
        return "Backfill notes\\rCREATE TABLE injected_by_description (id int);"


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [
        migrations.AddField("item", "note", models.CharField(max_length=20, null=True)),
        Backfill("UPDATE probe_item SET note = 'x'", reverse_sql=migrations.RunSQL.noop),
    ]
"""

#: The SQL a RunPython runs on the scratch copy is shown under its manual step, as comments.
PYTHON_MIGRATION = """\
from django.db import migrations


def look(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT '\\rCREATE TABLE injected_by_python (id int);--'")


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]
    operations = [migrations.RunPython(look, migrations.RunPython.noop)]
"""


@pytest.mark.parametrize(
    ("filename", "source", "injected"),
    [
        (NEWLINE_NAME + ".py", NEWLINE_MIGRATION, "injected_by_name"),
        ("0002_described.py", DESCRIBED_MIGRATION, "injected_by_description"),
        ("0002_python.py", PYTHON_MIGRATION, "injected_by_python"),
    ],
    ids=["migration-name-LF", "operation-description-CR", "python-rehearsal-CR"],
)
def test_nothing_from_a_migration_breaks_out_of_a_comment(
    filename: str, source: str, injected: str, tmp_path: Path
) -> None:
    """#16.15: a migration file name (LF), an operation's description (CR) or the SQL a RunPython
    ran on the scratch copy (CR) holding a line break and SQL: byhand sql either refuses (exit 1,
    nothing written, the control character named) or writes a runbook with no control
    character on any line, which the vendor's CLI runs without creating the injected table
    (psql ends a -- comment at CR as well as LF)."""
    project = Project(tmp_path / "project", {"probe": {"0001_initial.py": PROBE_0001, filename: source}})
    runbook = tmp_path / "runbook.sql"
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        done = project.manage(db, "byhand", "sql", "probe", "--manual-steps", "-o", str(runbook))
        if done.returncode != 0:
            assert "Traceback" not in done.stderr, done.stderr[-1500:]
            assert "control character" in done.stderr, done.stderr
            assert not runbook.exists()
            return
        cli = run_with_vendor_cli(db, runbook)
        created = table_exists(db, injected)
    text = runbook.read_bytes().decode()  # not read_text(): universal newlines would hide a CR
    controls = [line for line in text.split("\n") if any(c < " " and c != "\t" for c in line)]
    facts = {"created by the CLI": created, "lines with control characters": controls}
    assert facts == {"created by the CLI": False, "lines with control characters": []}, cli.stderr[-300:].decode()


def test_byhand_sql_refuses_a_migration_name_with_a_line_break(tmp_path: Path) -> None:
    """#16.15: the file name holds LF: byhand sql refuses with one message naming it escaped,
    writes nothing and leaves no scratch database."""
    project = Project(
        tmp_path / "project", {"probe": {"0001_initial.py": PROBE_0001, NEWLINE_NAME + ".py": NEWLINE_MIGRATION}}
    )
    runbook = tmp_path / "runbook.sql"
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        done = project.manage(db, "byhand", "sql", "probe", "-o", str(runbook))
    shown = "probe.0002_nl\\nCREATE TABLE injected_by_name (id int);--"
    assert (done.returncode, one_line(done.stderr), runbook.exists()) == (
        1,
        [
            f"CommandError: the migration '{shown}' holds a control character (a line break or the like): "
            "a runbook cannot write it into its comments and SQL literals safely. Rename its file (or app) to "
            "printable characters, then run byhand sql again (nothing was written)."
        ],
        False,
    )


def test_record_sql_escapes_its_warning_lines(tmp_path: Path) -> None:
    """#16.15: record --sql prints its warnings as comments: a dependency's name with LF is
    written escaped, so the printed SQL holds one comment line per warning."""
    third = NEWLINE_MIGRATION.replace('("probe", "0001_initial")', f'("probe", {NEWLINE_NAME!r})')
    files = {"0001_initial.py": PROBE_0001, NEWLINE_NAME + ".py": NEWLINE_MIGRATION, "0003_more.py": third}
    project = Project(tmp_path / "project", {"probe": files})
    with fresh_database() as db:
        project.migrate(db, "probe", "0001")
        done = project.manage(db, "byhand", "record", "probe", "0003_more", "--sql")
    assert done.returncode == 0, done.stderr[-800:]
    warnings = [line for line in done.stdout.splitlines() if line.startswith("--")]
    lines = done.stdout.splitlines()
    assert warnings == [
        "-- WARNING: its dependencies are not recorded: probe.0002_nl\\nCREATE TABLE injected_by_name (id int);--"
    ]
    assert [line for line in lines if not line.startswith("--")] == [
        line for line in lines if line.startswith("INSERT INTO")
    ]
