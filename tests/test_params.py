"""The operating side's view of a database: URLs, Django settings, table names, blockers; no server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from byhand.exceptions import BadDatabaseUrl
from byhand.vendors import get_vendor
from byhand.vendors.params import ConnectionParams, parse_database_url
from byhand.vendors.statements import digest, strip_comments, tables_named_in
from byhand.vendors.target import Blocker, milliseconds


def params_from_settings(settings: dict[str, Any], *, vendor: str) -> ConnectionParams:
    """The vendor's reading of a DATABASES entry, as manage.py byhand apply does it."""
    return get_vendor(vendor).params_from_settings(settings)


KNOWN = "use one of postgres://, postgresql://, pgsql://, mysql://, mariadb://, sqlite://"

# -- parse_database_url ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://deploy:s3cret@db.example.com:5433/shop",
            ConnectionParams(
                vendor="postgresql",
                database="shop",
                host="db.example.com",
                port=5433,
                user="deploy",
                password="s3cret",
            ),
        ),
        (
            "postgresql://deploy@db.example.com/shop",
            ConnectionParams(vendor="postgresql", database="shop", host="db.example.com", user="deploy"),
        ),
        ("pgsql:///shop", ConnectionParams(vendor="postgresql", database="shop")),
        (
            "mysql://deploy:s3cret@127.0.0.1:3306/shop?charset=utf8mb4",
            ConnectionParams(
                vendor="mysql",
                database="shop",
                host="127.0.0.1",
                port=3306,
                user="deploy",
                password="s3cret",
                options={"charset": "utf8mb4"},
            ),
        ),
        (
            "mariadb://deploy@db.example.com/shop",
            ConnectionParams(vendor="mysql", database="shop", host="db.example.com", user="deploy"),
        ),
        (
            "POSTGRES://db.example.com/shop",
            ConnectionParams(vendor="postgresql", database="shop", host="db.example.com"),
        ),
    ],
    ids=["postgres", "postgresql", "pgsql-no-host", "mysql", "mariadb", "scheme-in-capitals"],
)
def test_server_urls_are_read_into_params(url: str, expected: ConnectionParams) -> None:
    """Each server scheme maps to its vendor, with host, port, user, password and database."""
    params = parse_database_url(url)
    assert params == expected
    assert params.password == expected.password  # compared explicitly: it is hidden from repr


def test_percent_encoded_parts_are_decoded() -> None:
    """User, password and database name may hold '@', ':', '/' and spaces when percent-encoded."""
    params = parse_database_url("postgres://app%40corp:p%40ss%3Aw%2Fd@db.example.com:5433/shop%20prod")
    assert (params.user, params.password, params.database) == ("app@corp", "p@ss:w/d", "shop prod")


def test_query_options_are_kept_as_strings() -> None:
    """?sslmode=require&connect_timeout=5 become options, values as given."""
    params = parse_database_url("postgres://deploy@db.example.com/shop?sslmode=require&connect_timeout=5")
    assert params.options == {"sslmode": "require", "connect_timeout": "5"}


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("sqlite:///db.sqlite3", "db.sqlite3"),
        ("sqlite:///var/db.sqlite3", "var/db.sqlite3"),
        ("sqlite:////var/lib/shop/db.sqlite3", "/var/lib/shop/db.sqlite3"),
        ("sqlite:////var/lib/shop/my%20db.sqlite3", "/var/lib/shop/my db.sqlite3"),
    ],
)
def test_sqlite_urls_give_a_relative_or_absolute_path(url: str, database: str) -> None:
    """Three slashes: relative to the working directory; four: absolute."""
    assert parse_database_url(url) == ConnectionParams(vendor="sqlite", database=database)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("oracle://deploy:s3cret@db.example.com/shop", f"bad database URL: unknown scheme oracle://; {KNOWN}."),
        ("db.example.com/shop", f"bad database URL: unknown scheme (none); {KNOWN}."),
        (
            "postgres://deploy:s3cret@db.example.com:5432",
            "bad database URL: no database name in postgres://…; add it as the path: /dbname.",
        ),
        ("mysql://db.example.com/", "bad database URL: no database name in mysql://…; add it as the path: /dbname."),
        (
            "postgres://deploy:s3cret@db.example.com:pg/shop",
            "bad database URL: the port is not a number from 1 to 65535.",
        ),
        (
            "sqlite://db.example.com/db.sqlite3",
            "bad database URL: an SQLite URL is sqlite:///relative/path or sqlite:////absolute/path.",
        ),
        ("sqlite://", "bad database URL: an SQLite URL is sqlite:///relative/path or sqlite:////absolute/path."),
        ("sqlite:///", "bad database URL: an SQLite URL is sqlite:///relative/path or sqlite:////absolute/path."),
    ],
    ids=[
        "unknown-scheme",
        "no-scheme",
        "no-database",
        "empty-path",
        "port",
        "sqlite-host",
        "sqlite-empty",
        "sqlite-root",
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    """Each unreadable URL says what is wrong, never quoting the password."""
    with pytest.raises(BadDatabaseUrl) as caught:
        parse_database_url(url)
    assert str(caught.value) == message


# -- the password ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://deploy:s3cret@db.example.com:5433/shop", "postgresql://deploy@db.example.com:5433/shop"),
        ("postgres://:s3cret@db.example.com/shop", "postgresql://db.example.com/shop"),
        ("mariadb://deploy:s3cret@db.example.com/shop", "mysql://deploy@db.example.com/shop"),
        ("postgres://deploy:s3cret@/shop", "postgresql://deploy@localhost/shop"),
    ],
)
def test_display_and_repr_never_show_the_password(url: str, shown: str) -> None:
    """display() is the URL without the password; repr() leaves it out too."""
    params = parse_database_url(url)
    assert params.display() == shown
    assert "s3cret" not in repr(params)
    assert "s3cret" not in str(params)


@pytest.mark.parametrize("url", ["sqlite:///db.sqlite3", "sqlite:////var/lib/shop/db.sqlite3"])
def test_sqlite_display_reads_back_to_the_same_params(url: str) -> None:
    """An SQLite URL is shown as given and parses back to the same file."""
    params = parse_database_url(url)
    assert params.display() == url
    assert parse_database_url(params.display()) == params


def test_scrub_removes_the_password_from_a_driver_message() -> None:
    """Every occurrence of the password becomes ********."""
    params = parse_database_url("postgres://deploy:s3cret@db.example.com/shop")
    text = 'connection to server failed: password "s3cret" rejected (s3cret)'
    assert params.scrub(text) == 'connection to server failed: password "********" rejected (********)'


def test_scrub_without_a_password_changes_nothing() -> None:
    """No password (or an empty one): the text is returned as it is."""
    text = "FATAL: role deploy does not exist"
    assert parse_database_url("postgres://deploy@db.example.com/shop").scrub(text) == text
    assert parse_database_url("postgres://deploy:@db.example.com/shop").scrub(text) == text


def test_a_password_given_as_a_query_option_is_hidden_and_scrubbed_too() -> None:
    """libpq reads ?password=: it must not land in options, where repr() shows it and scrub() misses it."""
    params = parse_database_url("postgres://deploy@db.example.com/shop?password=s3cret&sslmode=require")
    assert "s3cret" not in repr(params)
    assert params.scrub("authentication failed for s3cret") == "authentication failed for ********"


# -- params_from_settings -------------------------------------------------------------


def test_settings_entry_becomes_the_same_params_as_a_url() -> None:
    """A PostgreSQL DATABASES entry: PORT as a number, only the options a driver connects with."""
    settings = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "HOST": "db.example.com",
        "PORT": "5433",
        "USER": "deploy",
        "PASSWORD": "s3cret",
        "OPTIONS": {"sslmode": "require", "connect_timeout": 5, "isolation_level": 2, "pool": True},
    }
    assert params_from_settings(settings, vendor="postgresql") == parse_database_url(
        "postgres://deploy:s3cret@db.example.com:5433/shop?sslmode=require&connect_timeout=5"
    )


def test_empty_settings_values_become_none() -> None:
    """Django's defaults ('' for HOST, PORT, USER, PASSWORD) mean: not given."""
    settings = {"NAME": "shop", "HOST": "", "PORT": "", "USER": "", "PASSWORD": ""}
    assert params_from_settings(settings, vendor="mysql") == ConnectionParams(vendor="mysql", database="shop")


def test_sqlite_settings_keep_only_the_file(tmp_path: Path) -> None:
    """NAME may be a Path (BASE_DIR / 'db.sqlite3'); it becomes a string."""
    settings = {"NAME": tmp_path / "db.sqlite3", "OPTIONS": {"timeout": 20}}
    assert params_from_settings(settings, vendor="sqlite") == ConnectionParams(
        vendor="sqlite", database=str(tmp_path / "db.sqlite3")
    )


def test_postgresql_search_path_option_is_kept() -> None:
    """OPTIONS {'options': '-c search_path=tenant'} picks the schema the runbook changes: it must reach the driver."""
    settings = {"NAME": "shop", "OPTIONS": {"options": "-c search_path=tenant"}}
    assert params_from_settings(settings, vendor="postgresql").options == {"options": "-c search_path=tenant"}


# -- tables_named_in ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ('ALTER TABLE "shop_book" ADD COLUMN "isbn" varchar(13) NULL;', ["shop_book"]),
        ('CREATE INDEX "shop_book_isbn_3b1c4f_idx" ON "shop_book" ("isbn");', ["shop_book"]),
        ('CREATE UNIQUE INDEX "shop_book_isbn_uniq" ON "shop_book" ("isbn");', ["shop_book"]),
        ('CREATE INDEX CONCURRENTLY "shop_book_title_idx" ON "shop_book" ("title");', ["shop_book"]),
        ('CREATE UNIQUE INDEX CONCURRENTLY "shop_book_slug_uniq" ON "shop_book" ("slug");', ["shop_book"]),
        ('CREATE INDEX "shop_book_title_like" ON "shop_book" ("title" varchar_pattern_ops);', ["shop_book"]),
        (
            'CREATE TABLE "shop_review" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, '
            '"stars" smallint NOT NULL, "book_id" bigint NOT NULL);',
            ["shop_review"],
        ),
        (
            'ALTER TABLE "shop_review" ADD CONSTRAINT "shop_review_book_id_4d2f_fk_shop_book_id" FOREIGN KEY '
            '("book_id") REFERENCES "shop_book" ("id") DEFERRABLE INITIALLY DEFERRED;',
            ["shop_review", "shop_book"],
        ),
        (
            'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (\'shop\', \'0002_book_isbn\', NOW());',
            ["django_migrations"],
        ),
        ('UPDATE "shop_book" SET "isbn" = \'\' WHERE "isbn" IS NULL;', ["shop_book"]),
        (
            'DELETE FROM "django_migrations" WHERE "app" = \'shop\' AND "name" IN (\'0002_book_isbn\');',
            ["django_migrations"],
        ),
        ('DROP TABLE "shop_review" CASCADE;', ["shop_review"]),
        ('ALTER TABLE "shop_book" RENAME TO "shop_volume";', ["shop_book", "shop_volume"]),
        ('CREATE TABLE IF NOT EXISTS "byhand_journal" ("id" bigint);', ["byhand_journal"]),
        ('DROP TABLE IF EXISTS "shop_review";', ["shop_review"]),
        ('ALTER TABLE ONLY "shop_book" ALTER COLUMN "isbn" DROP DEFAULT;', ["shop_book"]),
    ],
    ids=[
        "alter-table",
        "create-index",
        "create-unique-index",
        "create-index-concurrently",
        "create-unique-index-concurrently",
        "create-like-index",
        "create-table",
        "foreign-key",
        "insert",
        "update",
        "delete",
        "drop-table",
        "rename-table",
        "create-if-not-exists",
        "drop-if-exists",
        "alter-table-only",
    ],
)
def test_postgresql_statements_name_their_tables(sql: str, tables: list[str]) -> None:
    """Django's PostgreSQL statements: every table, unquoted, in order."""
    assert tables_named_in(sql) == tables


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("ALTER TABLE `shop_book` ADD COLUMN `isbn` varchar(13) NULL;", ["shop_book"]),
        ("CREATE INDEX `shop_book_isbn_3b1c4f_idx` ON `shop_book` (`isbn`);", ["shop_book"]),
        ("CREATE UNIQUE INDEX `shop_book_isbn_uniq` ON `shop_book` (`isbn`);", ["shop_book"]),
        (
            "CREATE TABLE `shop_review` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `book_id` bigint NOT NULL);",
            ["shop_review"],
        ),
        (
            "ALTER TABLE `shop_review` ADD CONSTRAINT `shop_review_book_id_4d2f_fk_shop_book_id` FOREIGN KEY "
            "(`book_id`) REFERENCES `shop_book` (`id`);",
            ["shop_review", "shop_book"],
        ),
        (
            "INSERT INTO `django_migrations` (`app`, `name`, `applied`) VALUES ('shop', '0002_book_isbn', NOW(6));",
            ["django_migrations"],
        ),
        ("UPDATE `shop_book` SET `isbn` = '' WHERE `isbn` IS NULL;", ["shop_book"]),
        (
            "DELETE FROM `django_migrations` WHERE `app` = 'shop' AND `name` IN ('0002_book_isbn');",
            ["django_migrations"],
        ),
        ("DROP TABLE `shop_review` CASCADE;", ["shop_review"]),
        ("RENAME TABLE `shop_book` TO `shop_volume`;", ["shop_book", "shop_volume"]),
    ],
    ids=[
        "alter-table",
        "create-index",
        "create-unique-index",
        "create-table",
        "foreign-key",
        "insert",
        "update",
        "delete",
        "drop-table",
        "rename-table",
    ],
)
def test_mysql_statements_name_their_tables(sql: str, tables: list[str]) -> None:
    """Django's MySQL statements, names in backquotes."""
    assert tables_named_in(sql) == tables


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        (
            'CREATE TABLE "shop_review" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "book_id" bigint NOT NULL '
            'REFERENCES "shop_book" ("id") DEFERRABLE INITIALLY DEFERRED);',
            ["shop_review", "shop_book"],
        ),
        (
            'CREATE TABLE "new__shop_book" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "title" varchar(200) '
            'NOT NULL, "isbn" varchar(13) NOT NULL);',
            ["new__shop_book"],
        ),
        (
            'INSERT INTO "new__shop_book" ("id", "title", "isbn") SELECT "id", "title", "isbn" FROM "shop_book";',
            ["new__shop_book", "shop_book"],
        ),
        ('DROP TABLE "shop_book";', ["shop_book"]),
        ('ALTER TABLE "new__shop_book" RENAME TO "shop_book";', ["new__shop_book", "shop_book"]),
        ('CREATE INDEX "shop_book_isbn_3b1c4f" ON "shop_book" ("isbn");', ["shop_book"]),
        ('INSERT INTO "shop_book" ("title") SELECT "title" FROM "shop_book";', ["shop_book"]),
    ],
    ids=["create-with-references", "remake-create", "remake-copy", "remake-drop", "remake-rename", "index", "once"],
)
def test_sqlite_statements_name_their_tables(sql: str, tables: list[str]) -> None:
    """SQLite's table remake names the new and the old table; each name comes once."""
    assert tables_named_in(sql) == tables


@pytest.mark.parametrize(
    "sql",
    [
        'ALTER TABLE "inventory"."shop_book" ADD COLUMN "isbn" varchar(13) NULL;',
        "ALTER TABLE `shop`.`shop_book` ADD COLUMN `isbn` varchar(13) NULL;",
        "ALTER TABLE inventory.shop_book ADD COLUMN isbn varchar(13) NULL;",
        'CREATE INDEX "shop_book_isbn_idx" ON "inventory"."shop_book" ("isbn");',
    ],
)
def test_schema_qualified_names_give_the_table(sql: str) -> None:
    """schema.table (quoted or not) names the table without its schema."""
    assert tables_named_in(sql) == ["shop_book"]


def test_statement_with_comments_and_lines_names_its_table() -> None:
    """A statement over several lines, lowercase keywords, still names its table."""
    sql = 'alter table\n    "shop_book"\n    add column "isbn" varchar(13) null;'
    assert tables_named_in(sql) == ["shop_book"]


@pytest.mark.parametrize(
    "sql",
    [
        'ALTER TABLE "shop_book" RENAME COLUMN "title" TO "name";',
        "ALTER TABLE `shop_book` RENAME COLUMN `title` TO `name`;",
    ],
)
def test_renamed_column_is_not_taken_for_a_table(sql: str) -> None:
    """RenameField's RENAME COLUMN ... TO "name": "name" is a column, not a table to look for blockers on."""
    assert tables_named_in(sql) == ["shop_book"]


@pytest.mark.parametrize(
    "sql",
    [
        "COMMENT ON TABLE \"shop_book\" IS 'Books on sale';",
        'COMMENT ON COLUMN "shop_book"."isbn" IS \'ISBN-13\';',
    ],
)
def test_comment_statements_name_their_table(sql: str) -> None:
    """db_table_comment / db_comment on PostgreSQL: COMMENT ON TABLE|COLUMN names shop_book."""
    assert tables_named_in(sql) == ["shop_book"]


def test_words_inside_string_literals_are_not_tables() -> None:
    """A default of 'on hold' (AddField with a default) does not make 'hold' a table."""
    sql = 'ALTER TABLE "shop_order" ADD COLUMN "status" varchar(20) DEFAULT \'on hold\' NOT NULL;'
    assert tables_named_in(sql) == ["shop_order"]


# -- small helpers ----------------------------------------------------------------------


def test_digest_is_sha256_in_hex() -> None:
    """The known SHA-256 of 'abc'."""
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(milliseconds=100), 100),
        (timedelta(seconds=1.5), 1500),
        (timedelta(microseconds=1600), 2),
        (timedelta(microseconds=400), 0),
        (timedelta(0), 0),
        (timedelta(seconds=-3), 0),
    ],
)
def test_milliseconds_rounds_and_never_goes_negative(delta: timedelta, expected: int) -> None:
    """Whole milliseconds for SET lock_timeout and busy_timeout; negative becomes 0."""
    assert milliseconds(delta) == expected


def test_strip_comments_drops_whole_line_comments_only() -> None:
    """sqlmigrate's '--' lines go; a trailing comment on a statement line stays."""
    sql = '--\n-- Create index shop_book_title_idx\n  -- indented\nCREATE INDEX "i" ON "t" ("c"); -- why\n'
    assert strip_comments(sql) == 'CREATE INDEX "i" ON "t" ("c"); -- why'


def blocker(**changes: object) -> Blocker:
    values: dict[str, object] = {
        "pid": 4121,
        "user": "deploy",
        "application": "gunicorn",
        "client": "10.0.0.5",
        "state": "idle in transaction",
        "transaction_age": timedelta(seconds=5.5),
        "query_start": datetime(2026, 11, 25, 21, 4, 7, tzinfo=timezone.utc),
        "query": 'SELECT "shop_book"."id",\n       "shop_book"."title"\n  FROM "shop_book" FOR UPDATE',
    }
    values.update(changes)
    return Blocker(**values)  # type: ignore[arg-type]


def test_blocker_describes_who_and_what() -> None:
    """pid, user@client (application), state, transaction age, the query on one line."""
    assert blocker().describe() == (
        "pid 4121 deploy@10.0.0.5 (gunicorn), idle in transaction, transaction open 5.5s: "
        'SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" FOR UPDATE'
    )


def test_blocker_that_may_hold_the_lock_says_so() -> None:
    """An uncertain blocker (SQLite: a process with the file open) has unknowns and '[may hold it]'."""
    uncertain = Blocker(
        pid=77,
        user=None,
        application="python manage.py shell",
        client=None,
        state=None,
        transaction_age=None,
        query_start=None,
        query=None,
        certain=False,
    )
    assert uncertain.describe() == "pid 77 ?@local (python manage.py shell), ?: - [may hold it]"


def test_blocker_query_is_cut_at_120_characters() -> None:
    """A long query is shown as its first 120 characters."""
    text = blocker(query="SELECT " + "x, " * 100).describe()
    assert text.endswith(": " + ("SELECT " + "x, " * 100)[:120])


@pytest.mark.parametrize(
    ("state", "idle"),
    [
        ("idle in transaction", True),
        ("idle in transaction (aborted)", True),
        ("Sleep", True),
        ("active", False),
        ("Query", False),
        (None, False),
    ],
)
def test_idle_in_transaction_on_each_vendor(state: str | None, idle: bool) -> None:
    """PostgreSQL's idle-in-transaction states and MySQL's Sleep count as idle."""
    assert blocker(state=state).is_idle_in_transaction() is idle


def test_blocker_as_dict_is_json_ready() -> None:
    """Seconds for the age, ISO text for the start."""
    assert blocker(query="SELECT 1").as_dict() == {
        "text": "pid 4121 deploy@10.0.0.5 (gunicorn), idle in transaction, transaction open 5.5s: SELECT 1",
        "pid": 4121,
        "user": "deploy",
        "application": "gunicorn",
        "client": "10.0.0.5",
        "state": "idle in transaction",
        "transaction_age": 5.5,
        "query_start": "2026-11-25T21:04:07+00:00",
        "query": "SELECT 1",
        "certain": True,
    }


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:12345/abcSECRET@127.0.0.1:5432/db",
        "postgres://u:pa@ss/abcSECRET@127.0.0.1/db",
        "mysql://u:ab#SECRET@127.0.0.1/db",
        "postgres://u:a?bSECRET@127.0.0.1/db",
    ],
)
def test_a_url_whose_password_is_not_percent_encoded_is_refused_without_echoing_it(url: str) -> None:
    """A / @ ? # in the password makes the URL ambiguous: refused, nothing of it in the message."""
    with pytest.raises(BadDatabaseUrl) as caught:
        parse_database_url(url)
    assert "SECRET" not in str(caught.value) and "%2F" in str(caught.value)
