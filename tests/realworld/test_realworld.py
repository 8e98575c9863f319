"""The oracle of tests/test_oracle.py on real third-party apps: wagtail (with its contrib
apps and taggit), django-cms, django-allauth, django-oauth-toolkit, django-celery-beat,
django-celery-results, django-reversion, django-guardian, django-filer and easy-thumbnails.

From three empty databases: database A is migrated with ``migrate`` while its schema
editor's statements are captured, database B gets byhand's runbook run by the vendor's
CLI, database C the same runbook run by ``byhand apply``; the statements per migration,
the introspected schema and the django_migrations rows must be equal (``step`` of
test_oracle.py); the forwards runbook is reviewed (byhand review) before and after it runs.
Forwards to the leaves (318 migrations), then
backwards app by app as far as ``migrate`` itself can go; django-cms has irreversible data
migrations, which byhand must refuse, as migrate does.

Run it alone, with its own settings and a venv holding the apps (see README.md):

    DJANGO_SETTINGS_MODULE=realworld.settings python -m pytest tests/realworld
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import django
import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.exceptions import IrreversibleError

from byhand.operating.preflight import numbered_steps
from byhand.runbook import parse_runbook
from support import (
    INSTANT,
    VENDOR,
    byhand,
    database_url,
    fresh_database,
    oracle_step,
    recorded_rows,
    schema_of,
    use_database,
)

ALIAS = "default"
#: Django 5.2 on PostgreSQL and MariaDB writes every runbook of the walk with ``--online``
#: (6.1 writes them plain): the online forms must build migrate's schema too.
ONLINE = ("--online",) if django.VERSION[:2] == (5, 2) and VENDOR != "sqlite" else ()

#: Backwards, one app at a time, dependents first, each step to zero where migrate itself
#: can go there. Wagtail's reverse data migrations fail under plain migrate past these
#: targets (ValueError: Cannot query "Permission object (N)": Must be "Permission"
#: instance; wagtail/wagtail#12834 for wagtaildocs 0011 and wagtailimages 0023, #2529 for
#: wagtailadmin 0001), so wagtailcore and taggit, which those depend on, stop early too.
#: Not here: cms (irreversible data migrations, tested below) and what cms depends on
#: (sites, auth, contenttypes: unapplying them would unapply cms); and, to keep the run
#: short (every backwards migrate re-renders the states of the whole project), the apps of
#: one to three plain migrations: admin, sessions, menus, usersessions, simple_translation.
BACKWARDS = [
    ("wagtailsearch", "zero"),  # with wagtailsearchpromotions; SQLite: an FTS5 virtual table
    ("wagtailforms", "zero"),
    ("wagtailredirects", "zero"),
    ("wagtaildocs", "0011_add_choose_permissions"),
    ("wagtailimages", "0023_add_choose_permissions"),
    ("wagtailusers", "zero"),
    ("wagtailembeds", "zero"),
    ("wagtailadmin", "0001_create_admin_access_permissions"),
    ("wagtailcore", "0026_group_collection_permission"),  # 71 migrations: RenameModel, non-atomic 0070
    ("taggit", "0001_initial"),  # RenameIndex
    ("socialaccount", "zero"),
    ("account", "zero"),
    ("mfa", "zero"),
    ("oauth2_provider", "zero"),
    ("django_celery_beat", "zero"),
    ("django_celery_results", "zero"),  # custom TryRemoveIndex / FakeAddIndex operations
    ("reversion", "zero"),  # a squashed migration
    ("guardian", "zero"),
    ("filer", "zero"),  # a squashed migration
    ("easy_thumbnails", "zero"),
]

#: django-cms can go back to its last irreversible migration, not past it.
CMS_LAST_IRREVERSIBLE = "0033_placeholder_source_data_migration"

#: Every irreversible operation (a RunPython without reverse_code) of django-cms.
CMS_IRREVERSIBLE = [
    "cms.0033_placeholder_source_data_migration operation 0",
    "cms.0030_auto_20180810_0629 operation 1",
    "cms.0030_auto_20180810_0629 operation 0",
    "cms.0027_title_placeholders_data_migration operation 0",
    "cms.0024_set_plugin_absolute_position operation 0",
    "cms.0019_set_pagenode operation 1",
    "cms.0019_set_pagenode operation 0",
    "cms.0018_create_pagenode operation 1",
    "cms.0005_auto_20140924_1039 operation 0",
]

#: The apps still recorded in django_migrations at the end.
LEFT = {
    "admin",
    "auth",
    "cms",
    "contenttypes",
    "menus",
    "sessions",
    "simple_translation",
    "sites",
    "taggit",
    "usersessions",
    "wagtailadmin",
    "wagtailcore",
    "wagtaildocs",
    "wagtailimages",
}

#: A callable default (wagtailcore 0057: translation_key default=uuid.uuid4) is evaluated
#: when the SQL is made, as test_oracle's instants are: the runbook and migrate carry
#: different values; only those differ.
UUID = (re.compile(r"'([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'"), "'<uuid>'")


def _refused(database: dict[str, Any], path: Path, *args: str) -> str:
    """byhand refuses the plan, writes nothing, and says why."""
    with use_database(ALIAS, database):
        with pytest.raises(CommandError) as refusal:
            call_command("byhand", "sql", *args, "--manual-steps", "--database", ALIAS, "-o", str(path))
    assert not path.exists()
    return str(refusal.value)


def _reviewed(path: Path, settings: dict[str, Any], *options: str) -> list[dict[str, Any]]:
    """``byhand review --json`` of ``path`` on ``settings``' database: every statement of the
    runbook, in order, each with a risk."""
    done = byhand("review", str(path), "--database-url", database_url(settings), "--json", "--no-squawk", *options)
    assert done.returncode == 0, done.stderr
    statements: list[dict[str, Any]] = json.loads(done.stdout)["statements"]
    runbook = parse_runbook(path.read_text())
    expected = [
        (block.migration or f"({block.kind})", number, step.sql)
        for block in runbook.blocks
        for number, step in numbered_steps(block)
    ]
    assert [(s["migration"], s["index"], s["sql"]) for s in statements] == expected
    assert all(s["risk"] in ("low", "medium", "high") and s["blocks"] is not None for s in statements)
    # Every statement observed on the scratch copy, but an online form's (not what ran there).
    assert all(s["observed"] or s["online"] for s in statements if s["kind"] == "schema")
    assert any(s["online"] for s in statements) == bool(ONLINE)
    return statements


def _review_forwards(path: Path, migrated: dict[str, Any], tmp_path: Path) -> None:
    """byhand review of the whole forwards runbook: before it runs (an empty database: every
    table is made by the runbook, so nothing is risky) and after (every block applied), with
    Django 6's hazards named, and the HTML page written."""
    with fresh_database(ALIAS) as empty:
        before = _reviewed(path, empty)
    assert not any(s["applied"] for s in before)
    assert {s["risk"] for s in before} == {"low"}, [s for s in before if s["risk"] != "low"][:3]
    renamed = {table for s in before for h in s["hazards"] if h["name"] == "rename-model" for table in h["tables"]}
    assert any(table.startswith("wagtailcore_") for table in renamed), renamed
    after = _reviewed(path, migrated, "--html", str(tmp_path / "review.html"))
    assert all(s["applied"] for s in after)
    page = (tmp_path / "review.html").read_text()
    assert all(block.migration in page for block in parse_runbook(path.read_text()).migrations)


@pytest.mark.needs_server
def test_real_apps_forwards_then_backwards(tmp_path: Path) -> None:
    """Forwards to the leaves, then back app by app: migrate's SQL, schema and rows at every step
    (with Django 5.2 on PostgreSQL and MariaDB, every runbook in its online forms: ONLINE)."""
    timings: list[str] = []

    def timed(name: str, *args: str, sql_options: tuple[str, ...] = ()) -> None:
        start = time.monotonic()
        try:
            path = tmp_path / f"{name}.sql"
            options = (*sql_options, *ONLINE)
            oracle_step(ALIAS, a, b, path, *args, c=c, masks=(INSTANT, UUID), sql_options=options)
        except AssertionError as exc:
            raise AssertionError(f"step {name} (byhand sql {' '.join(args)}): {exc}") from exc
        finally:
            timings.append(f"{name:>50}: {time.monotonic() - start:6.1f} s")

    try:
        with fresh_database(ALIAS) as a, fresh_database(ALIAS) as b, fresh_database(ALIAS) as c:
            # wagtaildocs 0005's default reads the root collection that wagtailcore's RunPython
            # makes earlier in the same plan: refused, unless the operator takes the value the
            # rehearsal made (a serial key: the same on a fresh database) (issue 18, item 3).
            message = _refused(b, tmp_path / "forwards-refused.sql")
            assert "document.collection in wagtaildocs.0005_document_collection" in message, message
            assert "wagtailcore_collection" in message and "--defaults-from-rehearsal" in message, message
            timed("forwards", sql_options=("--defaults-from-rehearsal",))
            with use_database(ALIAS, b):
                assert len(recorded_rows(ALIAS)) > 300
            _review_forwards(tmp_path / "forwards.sql", b, tmp_path)

            for app, target in BACKWARDS:
                timed(f"{app}-{target}", app, target)
            timed(f"cms-{CMS_LAST_IRREVERSIBLE}", "cms", CMS_LAST_IRREVERSIBLE)

            # Past it: byhand refuses and lists what cannot be reversed; migrate refuses too.
            for target in (("cms", "zero"), ("cms", "0032"), ("auth", "zero")):
                message = _refused(b, tmp_path / f"{'-'.join(target)}.sql", *target)
                assert "irreversible" in message
                assert f"cms.{CMS_LAST_IRREVERSIBLE} operation 0" in message
                if target == ("cms", "zero"):
                    assert all(operation in message for operation in CMS_IRREVERSIBLE), message
            with use_database(ALIAS, a):
                with pytest.raises(IrreversibleError):
                    call_command("migrate", "cms", "zero", database=ALIAS, verbosity=0)
                schema_a, rows_a = schema_of(ALIAS), recorded_rows(ALIAS)
            with use_database(ALIAS, b):
                assert schema_of(ALIAS) == schema_a
                assert recorded_rows(ALIAS) == rows_a
            assert {app for app, _name in rows_a} == LEFT
    finally:
        print("\n".join(timings))
