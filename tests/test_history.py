"""planning/history.py: django_migrations rows as SQL, quoted by the backend, whatever the names hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from django.conf import settings
from django.db.migrations.recorder import MigrationRecorder

from byhand.planning import history
from byhand.vendors import get_vendor
from support import fresh_database, use_database

ODD = [
    ("shop", "0001_it's"),
    ("shop", "0002_back\\slash"),
    ("shop", '0003_"q"; DROP TABLE x; --'),
    ("shop", "0004_100%"),
]


@pytest.fixture
def connection() -> Iterator[Any]:
    with fresh_database("default") as database, use_database("default", database) as connection:
        MigrationRecorder(connection).ensure_schema()
        yield connection


@pytest.mark.needs_server
def test_insert_and_delete_round_trip_odd_names(connection: Any) -> None:
    """Quotes, backslashes, semicolons and percent signs come back exactly."""
    vendor = get_vendor(connection.vendor)
    with connection.cursor() as cursor:
        for row in ODD:
            cursor.execute(history.insert_sql(connection, vendor, row, use_tz=settings.USE_TZ))
    assert set(MigrationRecorder(connection).applied_migrations()) == set(ODD)
    with connection.cursor() as cursor:
        cursor.execute(history.delete_sql(connection, vendor, ODD[:3]))
    assert set(MigrationRecorder(connection).applied_migrations()) == {ODD[3]}


@pytest.mark.needs_server
def test_a_squash_of_two_apps_deletes_each_name_under_its_own_app(connection: Any) -> None:
    """django-two-factor-auth's phonenumber squash replaces two_factor's migrations too:
    each replaced row goes under its own app, and a same name of a third app stays."""
    vendor = get_vendor(connection.vendor)
    squash = [
        ("two_factor", "0001_initial"),
        ("two_factor", "0002_auto"),
        ("phonenumber", "0001_initial"),
        ("phonenumber", "0001_squashed_0002_auto"),
    ]
    bystanders = [("shop", "0001_initial"), ("phonenumber", "0002_auto")]
    with connection.cursor() as cursor:
        for row in squash + bystanders:
            cursor.execute(history.insert_sql(connection, vendor, row, use_tz=settings.USE_TZ))
        cursor.execute(history.delete_sql(connection, vendor, squash))
    assert set(MigrationRecorder(connection).applied_migrations()) == set(bystanders)


@pytest.mark.needs_server
def test_applied_is_a_time_django_reads_back(connection: Any) -> None:
    """The applied column holds a value Django's recorder model parses as a datetime."""
    vendor = get_vendor(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(history.insert_sql(connection, vendor, ("shop", "0001_initial"), use_tz=settings.USE_TZ))
    applied = MigrationRecorder(connection).migration_qs.get().applied
    assert applied.year >= 2026
    assert (applied.tzinfo is not None) == settings.USE_TZ


def test_squash_records_replaced_names_and_itself() -> None:
    """A squash writes (and, backwards, deletes) its replaced rows, then its own."""

    class Squash:
        app_label, name = "catalog", "0001_squashed_0003_c"
        replaces: ClassVar[list[tuple[str, str]]] = [
            ("catalog", "0001_a"),
            ("catalog", "0002_b"),
            ("catalog", "0003_c"),
        ]

    rows = history.records_of(Squash())  # type: ignore[arg-type]
    assert rows == [*Squash.replaces, ("catalog", "0001_squashed_0003_c")]


LITERALS = ["50% off", "%s and %%", "it's", "back\\slash", "naïve ☃", "", None, 0, -7, 2.5, True, False]


@pytest.mark.parametrize("value", LITERALS, ids=repr)
@pytest.mark.needs_server
def test_rendered_statements_mean_what_the_driver_sent(connection: Any, value: Any) -> None:
    """A statement rendered with its parameters inlined returns what it returned with them bound."""
    vendor = get_vendor(connection.vendor)
    query = "SELECT %s"
    with connection.cursor() as cursor:
        cursor.execute(query, [value])
        bound = cursor.fetchone()[0]
        cursor.execute(vendor.render_executed(connection, query, [value]), None)
        inlined = cursor.fetchone()[0]
    assert inlined == bound
