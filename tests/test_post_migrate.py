"""manage.py byhand post-migrate: content types and permissions after a by-hand migration,
without applying, recording or creating anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections

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
