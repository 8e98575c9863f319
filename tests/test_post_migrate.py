"""manage.py byhand post-migrate: content types and permissions after a by-hand migration,
without applying, recording or creating anything else."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import management as auth_management
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections

from byhand.exceptions import ManualStepPending
from support import apply, fresh_database, recorded_rows, use_database, write_runbook


@pytest.mark.needs_server
def test_post_migrate_creates_the_content_type_and_permissions_of_a_hand_applied_model(tmp_path: Path) -> None:
    """reviews.0001 applied by byhand apply: post-migrate makes reviews.review and its four
    permissions; django_migrations is unchanged."""
    path = tmp_path / "reviews.sql"
    with fresh_database() as db, use_database("default", db):
        call_command("migrate", "auth", database="default", verbosity=0)
        call_command("migrate", "shop", database="default", verbosity=0)
        write_runbook("default", path, "reviews")
        apply(path, db, skip_manual_steps=True)
        ContentType.objects.clear_cache()
        assert not ContentType.objects.using("default").filter(app_label="reviews").exists()
        rows = recorded_rows("default")
        call_command("byhand", "post-migrate", "--database", "default", verbosity=0)
        ContentType.objects.clear_cache()
        review = ContentType.objects.using("default").get(app_label="reviews", model="review")
        codenames = set(
            Permission.objects.using("default").filter(content_type=review).values_list("codename", flat=True)
        )
        assert codenames == {"add_review", "change_review", "delete_review", "view_review"}
        assert recorded_rows("default") == rows


@pytest.mark.needs_server
def test_post_migrate_does_not_create_django_migrations(tmp_path: Path) -> None:
    """On a database without django_migrations it sends the signals and creates no table of its own."""
    with fresh_database() as db, use_database("default", db):
        call_command("byhand", "post-migrate", "--database", "default", verbosity=0)
        with connections["default"].cursor() as cursor:
            tables = connections["default"].introspection.table_names(cursor)
        assert "django_migrations" not in tables


def _permissions() -> set[tuple[str, str, str]]:
    ContentType.objects.clear_cache()
    return set(
        Permission.objects.using("default")
        .filter(content_type__app_label="shop")
        .values_list("content_type__model", "codename", "name")
    )


@pytest.mark.needs_server
def test_post_migrate_given_the_runbook_leaves_the_permissions_migrate_leaves(tmp_path: Path) -> None:
    """shop.0005 renames Publisher to Imprint. migrate on A; on B byhand apply (with the content
    type rename run by hand), then post-migrate --runbook: the same permissions. From Django 6.1
    auth renames add_publisher & co. from post_migrate's plan; before, it adds add_imprint & co."""
    path = tmp_path / "shop-0005.sql"
    with fresh_database() as a, fresh_database() as b:
        for db in (a, b):
            with use_database("default", db):
                call_command("migrate", "auth", database="default", verbosity=0)
                call_command("migrate", "shop", "0004", database="default", verbosity=0)
                assert ("publisher", "add_publisher", "Can add publisher") in _permissions()
        with use_database("default", a):
            call_command("migrate", "shop", "0005", database="default", verbosity=0)
            expected = _permissions()
        with use_database("default", b):
            write_runbook("default", path, "shop", "0005")
            with pytest.raises(ManualStepPending):
                apply(path, b)
            call_command("byhand", "run-python", "shop.0005_rename_publisher:0", "--database", "default")
            apply(path, b, manual_steps_done=frozenset({"shop.0005_rename_publisher:0"}))
            call_command("byhand", "post-migrate", "--database", "default", "--runbook", str(path), verbosity=0)
            assert _permissions() == expected
    if hasattr(auth_management, "rename_permissions_after_model_rename"):
        assert {codename for _, codename, _ in expected} >= {"add_imprint", "view_imprint"}
        assert not {codename for _, codename, _ in expected if codename.endswith("_publisher")}


@pytest.mark.needs_server
def test_post_migrate_leaves_out_what_the_runbook_did_not_do(tmp_path: Path) -> None:
    """A runbook whose migration is not recorded (apply not run): said, and not in the plan."""
    path = tmp_path / "shop-0005.sql"
    with fresh_database() as db, use_database("default", db):
        call_command("migrate", "auth", database="default", verbosity=0)
        call_command("migrate", "shop", "0004", database="default", verbosity=0)
        write_runbook("default", path, "shop", "0005")
        before = _permissions()
        err = io.StringIO()
        call_command("byhand", "post-migrate", "--database", "default", "--runbook", str(path), stderr=err)
        assert "shop.0005_rename_publisher is not recorded: left out of post_migrate's plan." in err.getvalue()
        assert _permissions() == before
