"""planning/recording.py: manage.py byhand record / unrecord on real servers: names, squashes,
dependencies, --force, --sql."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from support import fresh_database, journal_rows, recorded_rows, use_database


@pytest.fixture
def db() -> Iterator[dict[str, Any]]:
    """A fresh database: contenttypes and auth migrated, shop up to 0003."""
    with fresh_database() as settings, use_database("default", settings):
        call_command("migrate", "auth", database="default", verbosity=0)
        call_command("migrate", "shop", "0003", database="default", verbosity=0)
        yield settings


def byhand(*args: str) -> None:
    call_command("byhand", *args, "--database", "default", verbosity=0)


@pytest.mark.needs_server
def test_record_takes_a_unique_prefix_and_writes_the_full_name(db: dict[str, Any]) -> None:
    """'0004' names shop.0004_book_changes; the row holds the full name; the journal keeps it."""
    byhand("record", "shop", "0004")
    assert ("shop", "0004_book_changes") in recorded_rows("default")
    rows = [row for row in journal_rows(db) if row[0] == "record"]
    assert [(r[1], r[2]) for r in rows] == [("done", "shop.0004_book_changes")]


@pytest.mark.needs_server
def test_ambiguous_prefix_and_repeated_record_are_refused(db: dict[str, Any]) -> None:
    """'000' matches several migrations; recording what is recorded says so; nothing is written."""
    before = recorded_rows("default")
    with pytest.raises(CommandError) as ambiguous:
        byhand("record", "shop", "000")
    assert "more than one migration matches '000' in app 'shop': 0001_initial, 0002_book_index_together" in str(
        ambiguous.value
    )
    with pytest.raises(CommandError) as again:
        byhand("record", "shop", "0003")
    assert str(again.value) == (
        "shop.0003_rename_unnamed_index is already recorded in django_migrations of 'default': nothing to record."
    )
    assert recorded_rows("default") == before


@pytest.mark.needs_server
def test_record_refuses_missing_dependencies_unless_forced_with_a_reason(db: dict[str, Any]) -> None:
    """shop.0006 needs 0005, which is not recorded: refused; --force writes it and keeps the reason."""
    with pytest.raises(CommandError) as refused:
        byhand("record", "shop", "0006")
    assert "its dependencies are not recorded: shop.0005_rename_publisher" in str(refused.value)
    assert ("shop", "0006_indexes_constraints") not in recorded_rows("default")
    byhand("record", "shop", "0006", "--force", "applied by hand with pt-online-schema-change, ticket 42")
    assert ("shop", "0006_indexes_constraints") in recorded_rows("default")
    forced = [row for row in journal_rows(db) if row[0] == "record"][-1]
    assert forced[1] == "forced"
    assert json.loads(forced[5])["reason"] == "applied by hand with pt-online-schema-change, ticket 42"


@pytest.mark.needs_server
def test_unrecord_refuses_recorded_dependents_and_takes_exactly_the_rows(db: dict[str, Any]) -> None:
    """shop.0002 has 0003 recorded after it: refused; 0003 itself is unrecorded alone."""
    with pytest.raises(CommandError) as refused:
        byhand("unrecord", "shop", "0002")
    assert "recorded migrations depend on it: shop.0003_rename_unnamed_index" in str(refused.value)
    before = recorded_rows("default")
    byhand("unrecord", "shop", "0003")
    assert before - recorded_rows("default") == {("shop", "0003_rename_unnamed_index")}
    with pytest.raises(CommandError) as nothing:
        byhand("unrecord", "shop", "0003")
    assert "is not recorded" in str(nothing.value)


@pytest.mark.needs_server
def test_a_squash_records_its_replaced_names_and_itself_and_unrecords_them_all(db: dict[str, Any]) -> None:
    """catalog's squash: the three replaced rows and the squash row, as Django writes them."""
    byhand("record", "catalog", "0001_squashed")
    catalog = {name for app, name in recorded_rows("default") if app == "catalog"}
    assert catalog == {
        "0001_initial",
        "0002_category_slug",
        "0003_alter_category_slug",
        "0001_squashed_0003_alter_category_slug",
    }
    byhand("unrecord", "catalog", "0001_squashed")
    assert not any(app == "catalog" for app, _ in recorded_rows("default"))


@pytest.mark.needs_server
def test_sql_prints_the_insert_and_writes_nothing(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """--sql: the vendor's quoted INSERT for a host without the code; django_migrations untouched."""
    before = recorded_rows("default")
    byhand("record", "shop", "0004", "--sql")
    printed = capsys.readouterr().out
    assert printed.startswith("INSERT INTO ") and "'0004_book_changes'" in printed
    assert recorded_rows("default") == before


@pytest.mark.needs_server
def test_check_records_only_what_is_really_there_and_unrecords_only_what_is_gone(db: dict[str, Any]) -> None:
    """--check: record 0009 only once its index exists; unrecord it only once the index is gone."""
    call_command("migrate", "shop", "0008", database="default", verbosity=0)
    with pytest.raises(CommandError) as lacking:
        byhand("record", "shop", "0009", "--check")
    assert (
        "--check: the database lacks what shop.0009_concurrent_index does: shop_book index shop_book_promo_idx"
        in str(lacking.value)
    )
    quote = connections["default"].ops.quote_name
    with connections["default"].cursor() as cursor:
        cursor.execute(f"CREATE INDEX {quote('shop_book_promo_idx')} ON {quote('shop_book')} ({quote('promo')})")
    byhand("record", "shop", "0009", "--check")
    assert ("shop", "0009_concurrent_index") in recorded_rows("default")
    with pytest.raises(CommandError) as still:
        byhand("unrecord", "shop", "0009", "--check")
    assert "--check: the database still has what shop.0009_concurrent_index creates: shop_book shop_book_promo_idx" in (
        str(still.value)
    )
    with connections["default"].cursor() as cursor:
        drop = f"DROP INDEX {quote('shop_book_promo_idx')}"
        cursor.execute(drop + (f" ON {quote('shop_book')}" if connections["default"].vendor == "mysql" else ""))
    byhand("unrecord", "shop", "0009", "--check")
    assert ("shop", "0009_concurrent_index") not in recorded_rows("default")
