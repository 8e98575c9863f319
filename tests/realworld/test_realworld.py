"""The oracle of tests/test_oracle.py on real third-party apps: wagtail (with its contrib
apps and taggit), django-cms, django-allauth, django-oauth-toolkit, django-celery-beat,
django-celery-results, django-reversion, django-guardian, django-filer and easy-thumbnails.

From two empty databases: database A is migrated with ``migrate`` while its schema
editor's statements are captured, database B gets byhand's runbook run by the vendor's
CLI; the statements per migration, the introspected schema and the django_migrations rows
must be equal. Forwards to the leaves, then backwards app by app to zero where every
migration on the way is reversible; django-cms has irreversible data migrations, which
byhand must refuse, as migrate does.

Run it alone, with its own settings (see README.md):

    DJANGO_SETTINGS_MODULE=realworld.settings python -m pytest tests/realworld
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.exceptions import IrreversibleError

from support import fresh_database, recorded_rows, require_server, schema_of, use_database
from test_oracle import step

ALIAS = "default"

#: Unapplied one app at a time, dependents before what they depend on. Not here: cms
#: (irreversible data migrations) and what cms depends on (sites, auth, contenttypes):
#: unapplying those would unapply cms too.
BACKWARDS = [
    "wagtailsearchpromotions",
    "wagtailforms",
    "wagtailredirects",
    "wagtaildocs",
    "wagtailimages",
    "wagtailsearch",
    "wagtailembeds",
    "wagtailusers",
    "simple_translation",
    "wagtailadmin",
    "wagtailcore",
    "taggit",
    "usersessions",
    "mfa",
    "socialaccount",
    "account",
    "oauth2_provider",
    "django_celery_beat",
    "django_celery_results",
    "reversion",
    "guardian",
    "filer",
    "easy_thumbnails",
    "menus",
    "admin",
    "sessions",
]

#: The last irreversible migration of django-cms: cms can go back to it, not past it.
CMS_LAST_IRREVERSIBLE = "0033_placeholder_source_data_migration"

#: What byhand must list when asked to take cms (or auth, which cms depends on) to zero.
CMS_IRREVERSIBLE = [
    "cms.0033_placeholder_source_data_migration operation 0: Raw Python operation",
    "cms.0030_auto_20180810_0629 operation 1: Raw Python operation",
    "cms.0027_title_placeholders_data_migration operation 0: Raw Python operation",
    "cms.0024_set_plugin_absolute_position operation 0: Raw Python operation",
    "cms.0019_set_pagenode operation 0: Raw Python operation",
    "cms.0005_auto_20140924_1039 operation 0: Raw Python operation",
]


def _refused(alias: str, database: dict, path: Path, *args: str) -> str:
    """byhand refuses the backwards plan, writes nothing, and says why."""
    with use_database(alias, database):
        with pytest.raises(CommandError) as refusal:
            call_command("byhand", "sql", *args, "--manual-steps", "--database", alias, "-o", str(path))
    assert not path.exists()
    return str(refusal.value)


def test_real_apps_forwards_then_backwards(tmp_path: Path) -> None:
    require_server()
    timings: list[tuple[str, float]] = []

    def timed(name: str, *args: str) -> None:
        start = time.monotonic()
        step(ALIAS, a, b, tmp_path / f"{name}.sql", *args)
        timings.append((name, time.monotonic() - start))

    with fresh_database(ALIAS) as a, fresh_database(ALIAS) as b:
        timed("forwards")
        with use_database(ALIAS, b):
            assert len(recorded_rows(ALIAS)) > 300

        for app in BACKWARDS:
            timed(f"{app}-zero", app, "zero")

        # cms: back to its last irreversible migration, which byhand and migrate keep.
        timed("cms-back", "cms", CMS_LAST_IRREVERSIBLE)
        for target in (("cms", "zero"), ("cms", "0032"), ("auth", "zero")):
            message = _refused(ALIAS, b, tmp_path / f"{'-'.join(target)}.sql", *target)
            assert "irreversible operation(s)" in message
            assert f"cms.{CMS_LAST_IRREVERSIBLE} operation 0: Raw Python operation" in message
        message = _refused(ALIAS, b, tmp_path / "cms-zero.sql", "cms", "zero")
        for operation in CMS_IRREVERSIBLE:
            assert operation in message
        with use_database(ALIAS, a):
            with pytest.raises(IrreversibleError):
                call_command("migrate", "cms", "zero", database=ALIAS, verbosity=0)
            schema_a, rows_a = schema_of(ALIAS), recorded_rows(ALIAS)
        with use_database(ALIAS, b):
            assert (schema_of(ALIAS), recorded_rows(ALIAS)) == (schema_a, rows_a)
            left = {app for app, _name in rows_a}
        assert left == {"auth", "cms", "contenttypes", "sites"}

    print("\n".join(f"{name:>30}: {seconds:6.1f} s" for name, seconds in timings))
