"""status and review as a database user that may not read what they read: one message that
says which privilege is missing, exit 2, never a driver's traceback. Real users, made here
and dropped afterwards (SQLite has none)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from byhand.runbook import Block, Control, Runbook, Step
from byhand.vendors import get_vendor
from support import VENDOR, byhand, database_url, fresh_database, make_shop_tables, target_for

pytestmark = [
    pytest.mark.needs_server,
    pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite has no users and no privileges"),
]


def _runbook() -> Runbook:
    """One migration that adds a column to shop_book."""
    q = get_vendor(VENDOR).quote_name
    alter = Step(kind="schema", sql=f"ALTER TABLE {q('shop_book')} ADD COLUMN {q('isbn')} varchar(13) NULL;", op=0)
    now = "NOW()" if VENDOR == "postgresql" else "CURRENT_TIMESTAMP(6)"
    record = Step(
        kind="record",
        sql=f"INSERT INTO {q('django_migrations')} ({q('app')}, {q('name')}, {q('applied')}) "
        f"VALUES ('shop', '0002_book_isbn', {now});",
    )
    items = [Control("BEGIN;"), alter, record, Control("COMMIT;")] if VENDOR == "postgresql" else [alter, record]
    block = Block(
        kind="migration",
        migration="shop.0002_book_isbn",
        atomic=True,
        requires=["shop.0001_initial"],
        records=[["shop", "0002_book_isbn"]],
        items=items,
    )
    return Runbook(header={"direction": "forwards", "vendor": VENDOR}, blocks=[block])


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """A database with django_migrations and shop_book; the runbook written beside it."""
    with fresh_database() as settings:
        target = target_for(settings)
        try:
            make_shop_tables(target)
        finally:
            target.close()
        path = tmp_path / "runbook.sql"
        path.write_text(_runbook().render())
        yield settings, path


@contextmanager
def user(settings: dict[str, Any], *grants: str) -> Iterator[str]:
    """A new database user that may log in, given ``grants`` (each "PRIVILEGE ON object",
    with {user} for its name); its name. Dropped afterwards."""
    name = f"byhand_reader_{secrets.token_hex(3)}"
    admin = target_for(settings)
    account = name if VENDOR == "postgresql" else f"'{name}'@'%'"
    try:
        admin.execute(f"CREATE ROLE {name} LOGIN" if VENDOR == "postgresql" else f"CREATE USER {account}")
        for grant in grants:
            admin.execute(f"GRANT {grant} TO {account}")
        yield name
    finally:
        if VENDOR == "postgresql":
            admin.execute(f"DROP OWNED BY {name}")  # its privileges in this database
            admin.execute(f"DROP ROLE {name}")
        else:
            admin.execute(f"DROP USER {account}")
        admin.close()


def as_user(settings: dict[str, Any], name: str) -> str:
    return database_url({**settings, "USER": name})


@pytest.mark.parametrize("command", ["review", "status"])
def test_a_user_without_select_on_django_migrations_is_told_which_privilege(
    database: tuple[dict[str, Any], Path], command: str
) -> None:
    """It may read shop_book but not django_migrations (MariaDB then hides the table from it:
    as if it did not exist, every migration was called pending)."""
    settings, path = database
    table = "shop_book" if VENDOR == "postgresql" else f"{settings['NAME']}.shop_book"
    with user(settings, f"SELECT ON {table}") as name:
        done = byhand(command, str(path), "--database-url", as_user(settings, name))
    if VENDOR == "postgresql":
        refused = "permission denied for table django_migrations"
    else:
        refused = (
            f"(1142, \"SELECT command denied to user '{name}'@'127.0.0.1' for table "
            f'`{settings["NAME"]}`.`django_migrations`")'
        )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"byhand: cannot read django_migrations as database user {name}: {refused}. Grant {name} SELECT on "
        "django_migrations (review and status only read), or connect as a user that has it.\n"
    )


@pytest.mark.skipif(VENDOR != "mysql", reason="MariaDB lists a table to a user with any privilege on it")
def test_a_user_that_may_only_insert_into_django_migrations_is_told_which_privilege(
    database: tuple[dict[str, Any], Path],
) -> None:
    """It sees django_migrations (it has a privilege on it) but may not read it."""
    settings, path = database
    with user(settings, f"INSERT ON {settings['NAME']}.django_migrations") as name:
        done = byhand("review", str(path), "--database-url", as_user(settings, name))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"byhand: cannot read django_migrations as database user {name}: (1142, "), done
    assert done.stderr.endswith(
        f"Grant {name} SELECT on django_migrations (review and status only read), or connect as a user that has it.\n"
    )


@pytest.mark.skipif(VENDOR != "postgresql", reason="MariaDB's information_schema is every user's")
def test_a_user_that_may_not_read_the_catalogue_is_told_which_privilege(
    database: tuple[dict[str, Any], Path],
) -> None:
    """pg_class's SELECT revoked from PUBLIC (a hardening some DBAs apply): review cannot read
    the tables' sizes, and says what it needs; status, which does not read them, works."""
    settings, path = database
    admin = target_for(settings)
    try:
        admin.execute("REVOKE SELECT ON pg_catalog.pg_class FROM PUBLIC")  # this database's only
    finally:
        admin.close()
    with user(settings, "SELECT ON django_migrations") as name:
        done = byhand("review", str(path), "--database-url", as_user(settings, name))
        status = byhand("status", str(path), "--database-url", as_user(settings, name))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"byhand: cannot read the tables' sizes as database user {name}: permission denied for table pg_class. "
        f"Grant {name} SELECT on pg_catalog.pg_class and pg_index and USAGE on each table's schema (review and "
        "status only read), or connect as a user that has it.\n"
    )
    assert status.returncode == 0, status.stderr


@pytest.mark.skipif(VENDOR != "mysql", reason="MariaDB hides a table from a user with no privilege on it")
@pytest.mark.parametrize("command", ["review", "status"])
def test_a_user_that_may_read_only_django_migrations_is_told_a_grant_mariadb_accepts(
    database: tuple[dict[str, Any], Path], command: str
) -> None:
    """No journal yet (apply never ran): MariaDB refuses "GRANT SELECT ON byhand_journal" for a
    table that does not exist (1146), and the user cannot tell whether it does (it is hidden
    from it). The message says so and names a grant on the database's tables, which MariaDB
    accepts; with that grant the command works."""
    settings, path = database
    with user(settings, f"SELECT ON {settings['NAME']}.django_migrations") as name:
        done = byhand(command, str(path), "--database-url", as_user(settings, name))
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.startswith(
            f"byhand: cannot read the journal byhand_journal as database user {name}: (1142, "
        )
        grant = f"GRANT SELECT ON `{settings['NAME']}`.* TO '{name}'@'%'"
        assert done.stderr.endswith(
            f"Grant {name} SELECT on the database's tables (byhand_journal may not exist yet, and MariaDB does not "
            f"show this user whether it does; a grant on a table that does not exist is refused): {grant} (review "
            "and status only read), or connect as a user that has it.\n"
        ), done.stderr
        admin = target_for(settings)
        try:
            admin.execute(grant)
        finally:
            admin.close()
        again = byhand(command, str(path), "--database-url", as_user(settings, name))
    assert again.returncode == 0, again.stderr
