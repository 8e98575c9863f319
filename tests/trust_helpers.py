"""Helpers of the trust probes (issue 16): the console script and manage.py in subprocesses,
tiny Django projects written at test time, raw driver sessions to hold locks and look.

Black-box on purpose: nothing here imports byhand's internals, which are being renamed;
from tests/support.py only the names that stay (VENDOR, database_url, ...) are used.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import ROOT, VENDOR, database_url

BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "example"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of this process without Django's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env.update(extra)
    return env


def byhand(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script, with no Django settings in its environment."""
    return subprocess.run(
        [str(BIN / "byhand"), *args],
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=timeout,
        check=False,
    )


def byhand_popen(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([str(BIN / "byhand"), *args], text=True, env=clean_env(), **kwargs)


def manage_env(settings: dict[str, Any], *, module: str = "exampleproject.settings", path: Path | None = None) -> dict:
    pythonpath = [str(EXAMPLE)] + ([str(path)] if path else [])
    return clean_env(
        DJANGO_SETTINGS_MODULE=module, DATABASE_URL=database_url(settings), PYTHONPATH=os.pathsep.join(pythonpath)
    )


def manage(
    settings: dict[str, Any],
    *args: str,
    module: str = "exampleproject.settings",
    path: Path | None = None,
    timeout: float = 180,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m django ARGS`` (manage.py) for the example project, or a tiny project under
    ``path``, with DATABASE_URL pointing at ``settings``."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        capture_output=True,
        text=True,
        env=env or manage_env(settings, module=module, path=path),
        timeout=timeout,
        check=False,
    )


# -- tiny projects ---------------------------------------------------------------------------

SETTINGS = """\
import os
from exampleproject.settings import database_from_url

SECRET_KEY = "trust-probe"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = {apps!r}
DATABASES = {{"default": database_from_url(os.environ["DATABASE_URL"])}}
{extra}
"""


class Project:
    """A Django project written under ``root``: settings module ``trustsettings`` and one
    package per app, each with the migrations given as {file name: source}."""

    def __init__(self, root: Path, apps: dict[str, dict[str, str]], *, extra_settings: str = "") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        installed = ["django.contrib.contenttypes", "byhand", *apps]
        (root / "trustsettings.py").write_text(SETTINGS.format(apps=installed, extra=extra_settings))
        for app, migrations in apps.items():
            package = root / app / "migrations"
            package.mkdir(parents=True, exist_ok=True)
            (root / app / "__init__.py").write_text("")
            (package / "__init__.py").write_text("")
            for name, source in migrations.items():
                (package / name).write_text(textwrap.dedent(source))

    def manage(self, settings: dict[str, Any], *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return manage(settings, *args, module="trustsettings", path=self.root, **kwargs)

    def env(self, settings: dict[str, Any]) -> dict[str, str]:
        return manage_env(settings, module="trustsettings", path=self.root)

    def runbook(self, settings: dict[str, Any], path: Path, *args: str) -> Path:
        """``manage.py byhand sql ARGS --manual-steps -o PATH``; asserts it worked."""
        done = self.manage(settings, "byhand", "sql", *args, "--manual-steps", "-o", str(path))
        assert done.returncode == 0, done.stderr
        return path

    def migrate(self, settings: dict[str, Any], *args: str) -> None:
        done = self.manage(settings, "migrate", *args, "--verbosity", "0")
        assert done.returncode == 0, done.stderr


def example_runbook(settings: dict[str, Any], path: Path, *args: str) -> Path:
    """The example project's ``manage.py byhand sql ARGS --manual-steps -o PATH``."""
    done = manage(settings, "byhand", "sql", *args, "--manual-steps", "-o", str(path))
    assert done.returncode == 0, done.stderr
    return path


# -- raw sessions ----------------------------------------------------------------------------


class Session:
    """One autocommit connection through the vendor's own driver (no byhand, no Django)."""

    def __init__(self, settings: dict[str, Any], *, application: str = "trust-probe") -> None:
        if VENDOR == "postgresql":
            import psycopg

            self.connection: Any = psycopg.connect(
                dbname=settings["NAME"],
                user=settings.get("USER") or "postgres",
                host=settings.get("HOST") or "127.0.0.1",
                port=int(settings.get("PORT") or 5432),
                autocommit=True,
                application_name=application,
            )
        elif VENDOR == "mysql":
            import MySQLdb  # type: ignore[import-untyped]

            self.connection = MySQLdb.connect(
                database=settings["NAME"],
                user=settings.get("USER") or "root",
                host=settings.get("HOST") or "127.0.0.1",
                port=int(settings.get("PORT") or 3306),
                autocommit=True,
            )
        else:
            import sqlite3

            self.connection = sqlite3.connect(settings["NAME"], isolation_level=None, check_same_thread=False)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        try:
            if VENDOR == "sqlite":
                cursor.execute(sql.replace("%s", "?"), params)
            else:
                cursor.execute(sql, params or None)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def pid(self) -> int:
        if VENDOR == "postgresql":
            return int(self.connection.info.backend_pid)
        if VENDOR == "mysql":
            return int(self.connection.thread_id())
        return os.getpid()

    def close(self) -> None:
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 -- terminated by the test's subject: nothing to close
            pass


@contextmanager
def session(settings: dict[str, Any], **kwargs: Any) -> Iterator[Session]:
    s = Session(settings, **kwargs)
    try:
        yield s
    finally:
        s.close()


def scalar(settings: dict[str, Any], sql: str) -> Any:
    with session(settings) as s:
        return s.execute(sql)[0][0]


def q(name: str) -> str:
    return f"`{name}`" if VENDOR == "mysql" else f'"{name}"'


def journal_rows(settings: dict[str, Any], table: str = "byhand_journal") -> list[dict[str, Any]]:
    """The journal's rows, oldest first, as column -> value ([] when the table does not exist)."""
    columns = [
        "run_id",
        "event",
        "status",
        "migration",
        "statement_index",
        "attempts",
        "finished_at",
        "error",
        "detail",
    ]
    with session(settings) as s:
        try:
            rows = s.execute(f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table)} ORDER BY {q('id')}")
        except Exception:  # noqa: BLE001 -- no such table
            return []
    return [dict(zip(columns, row, strict=True)) for row in rows]


def migration_rows(settings: dict[str, Any], app: str, name: str) -> int:
    with session(settings) as s:
        return int(s.execute("SELECT COUNT(*) FROM django_migrations WHERE app = %s AND name = %s", (app, name))[0][0])


def install_metadata_lock_info(settings: dict[str, Any]) -> None:
    """MariaDB names the holders of a metadata lock only with this plugin (shipped with the server)."""
    with session(settings) as s:
        rows = s.execute("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'")
        if not rows[0][0]:
            s.execute("INSTALL SONAME 'metadata_lock_info'")


def wait_until(condition: Callable[[], bool], *, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Reader(threading.Thread):
    """Collects a pipe's lines in the background (so that the writer never blocks)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def resign(text: str) -> str:
    """The runbook ``text`` with its last line replaced by the checksum of everything above
    it, as the README documents the file (a forger's re-signing, without byhand sign)."""
    body = text.rstrip("\n").rpartition("\n")[0] + "\n"
    return f"{body}-- byhand checksum: sha256:{hashlib.sha256(body.encode()).hexdigest()}\n"


def run_with_vendor_cli(settings: dict[str, Any], runbook: Path) -> subprocess.CompletedProcess[bytes]:
    """psql -f / mysql / sqlite3 -bail running the runbook's bytes as the README says they can."""
    if VENDOR == "postgresql":
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(runbook), database_url(settings)]
    elif VENDOR == "mysql":
        command = [
            "mysql",
            "-h",
            settings.get("HOST") or "127.0.0.1",
            "-P",
            str(settings.get("PORT") or 3306),
            "-u",
            settings.get("USER") or "root",
            settings["NAME"],
        ]
    else:
        command = ["sqlite3", "-bail", settings["NAME"]]
    with runbook.open("rb") as stdin:
        return subprocess.run(command, stdin=stdin, capture_output=True, check=False, timeout=60)


def table_exists(settings: dict[str, Any], table: str) -> bool:
    with session(settings) as s:
        if VENDOR == "postgresql":
            return bool(s.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0])
        if VENDOR == "mysql":
            return bool(
                s.execute(
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = %s",
                    (table,),
                )[0][0]
            )
        return bool(s.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = %s", (table,))[0][0])


# -- the probe app: a non-atomic migration whose first statement is a data UPDATE -------------

PROBE_0001 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Item",
            [("id", models.BigAutoField(primary_key=True)), ("n", models.IntegerField(default=0))],
        ),
    ]
"""

#: Statement 1 counts its runs in probe_item.n; statement 2 needs an exclusive lock on probe_item.
PROBE_0002 = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("probe", "0001_initial")]
    operations = [
        migrations.RunSQL("UPDATE probe_item SET n = n + 1", reverse_sql=migrations.RunSQL.noop),
        migrations.AddField("item", "note", models.CharField(max_length=20, null=True)),
    ]
"""


def probe_project(root: Path, **more: dict[str, str]) -> Project:
    """App probe: 0001 creates probe_item, 0002 (not atomic) bumps n, then adds a column."""
    return Project(root, {"probe": {"0001_initial.py": PROBE_0001, "0002_bump.py": PROBE_0002}, **more})


def probe_at_0001(project: Project, settings: dict[str, Any], runbook: Path) -> Path:
    """Migrate to probe.0001 with one row (n = 0) and write the runbook for probe.0002."""
    project.migrate(settings, "probe", "0001")
    with session(settings) as s:
        s.execute("INSERT INTO probe_item (n) VALUES (0)")
    return project.runbook(settings, runbook, "probe", "0002")


def bumps(settings: dict[str, Any]) -> int:
    """How many times statement 1 of probe.0002 (the UPDATE) has run."""
    return int(scalar(settings, "SELECT n FROM probe_item"))


@contextmanager
def holding_probe_item(settings: dict[str, Any]) -> Iterator[Session]:
    """A session whose open transaction has read probe_item: an ALTER TABLE on it waits, the
    UPDATE does not (SQLite: the write lock, which blocks every write)."""
    with session(settings, application="trust-blocker") as s:
        if VENDOR == "sqlite":
            s.execute("BEGIN IMMEDIATE")
        else:
            s.execute("BEGIN")
            s.execute("SELECT * FROM probe_item")
        try:
            yield s
        finally:
            s.execute("ROLLBACK")
