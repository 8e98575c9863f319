"""manage.py byhand verify on real servers: each drift case is found and attributed to the right migration."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, models
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from byhand.planning.schema import _touched
from support import VENDOR, fresh_database, recorded_rows, use_database


@pytest.fixture
def db() -> Iterator[dict[str, Any]]:
    """A fresh database of the vendor under test; the alias points at it."""
    with fresh_database() as settings, use_database("default", settings):
        yield settings


def migrate(*args: str) -> None:
    call_command("migrate", *args, database="default", verbosity=0)


def run(*statements: str) -> None:
    with connections["default"].cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def q(name: str) -> str:
    return str(connections["default"].ops.quote_name(name))


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    """Exit status and the differences of manage.py byhand verify --json."""
    capsys.readouterr()
    try:
        call_command("byhand", "verify", "--database", "default", "--json")
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    report = json.loads(capsys.readouterr().out)
    return status, report["differences"]


def find(differences: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    for difference in differences:
        if all(difference[k] == v for k, v in wanted.items()):
            return difference
    raise AssertionError(f"no difference with {wanted} in {json.dumps(differences, indent=1)}")


@pytest.mark.needs_server
def test_a_migrated_database_has_no_drift(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0, no differences; verify wrote nothing to the database."""
    migrate()
    rows = recorded_rows("default")
    assert verify(capsys) == (0, [])
    assert recorded_rows("default") == rows


def scratch_applied(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[Any, list[str]]:
    """verify's result, and the migrations applied (on its scratch copy) while it ran: Django's
    own apply_migration, watched, not replaced."""
    applied: list[str] = []
    original = MigrationExecutor.apply_migration

    def watched(self: MigrationExecutor, state: Any, migration: Any, *args: Any, **kwargs: Any) -> Any:
        applied.append(f"{migration.app_label}.{migration.name}")
        return original(self, state, migration, *args, **kwargs)

    monkeypatch.setattr(MigrationExecutor, "apply_migration", watched)
    result = verify(capsys)
    monkeypatch.setattr(MigrationExecutor, "apply_migration", original)
    return result, applied


@pytest.mark.needs_server
def test_without_drift_the_pending_migrations_are_not_applied_on_the_scratch_copy(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """#22.3: no difference needs a pending migration to explain it, so verify migrates its
    scratch copy to the recorded set only (applying the pending ones too made it cost about
    as much again). record --check still finds what a pending migration does
    (test_recording)."""
    migrate("shop", "0004")  # forwards only: a backwards migrate leaves Django's backwards names
    recorded = {f"{app}.{name}" for app, name in MigrationRecorder(connections["default"]).applied_migrations()}
    result, applied = scratch_applied(monkeypatch, capsys)
    assert result == (0, [])
    assert "shop.0004_book_changes" in applied
    assert set(applied) == recorded


@pytest.mark.needs_server
def test_pending_migrations_are_applied_on_the_scratch_copy_only_as_far_as_a_difference_needs(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """#22.3: shop 0006 applied, its row deleted: its three objects are applied-not-recorded,
    found by applying 0006 on the scratch copy; 0007 to 0009, pending too, explain nothing
    more and are not applied there."""
    migrate("shop", "0006")
    table = q(MigrationRecorder.Migration._meta.db_table)
    run(f"DELETE FROM {table} WHERE app = 'shop' AND name = '0006_indexes_constraints'")
    (status, differences), applied = scratch_applied(monkeypatch, capsys)
    assert status == 1
    assert {(d["verdict"], tuple(d["migrations"])) for d in differences} == {
        ("applied-not-recorded", ("shop.0006_indexes_constraints",))
    }
    assert len(differences) == 3, differences
    assert applied[-1] == "shop.0006_indexes_constraints"
    assert "shop.0007_sql_and_python" not in applied


@pytest.mark.needs_server
def test_an_index_on_an_expression_made_by_hand_is_unexplained(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Django's SQLite introspection gives an expression as a column named None: verify printed
    a traceback (TypeError in the difference's label) where it should name the extra index."""
    if VENDOR == "mysql":
        pytest.skip("MariaDB has no index on an expression")
    migrate()
    run(f"CREATE INDEX {q('by_hand_lower_idx')} ON {q('shop_book')} (lower({q('title')}))")
    status, differences = verify(capsys)
    found = find(differences, table="shop_book", verdict="unexplained")
    assert status == 1 and found["what"].startswith("index by_hand_lower_idx ("), found


@pytest.mark.needs_server
def test_a_dropped_column_is_recorded_but_not_applied(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """reviews_review.text is gone: the migration that created it is named."""
    migrate()
    run(f"ALTER TABLE {q('reviews_review')} DROP COLUMN {q('text')}")
    status, differences = verify(capsys)
    assert status == 1
    found = find(differences, table="reviews_review", what="column text")
    assert found["verdict"] == "recorded-not-applied"
    assert found["migrations"] == ["reviews.0001_initial"]


@pytest.mark.needs_server
def test_an_extra_index_is_unexplained(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """An index no migration creates, and no pending migration would."""
    migrate()
    run(f"CREATE INDEX {q('by_hand_idx')} ON {q('catalog_category')} ({q('name')})")
    _, differences = verify(capsys)
    found = find(differences, table="catalog_category", what="index by_hand_idx (name)")
    assert (found["kind"], found["verdict"], found["migrations"]) == ("extra", "unexplained", [])


@pytest.mark.needs_server
def test_a_renamed_index_is_name_drift(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The slug index under another name: the same object, attributed to the migration of its field."""
    migrate()
    old = next(
        name
        for name, data in _constraints("catalog_category").items()
        if data["index"] and data["columns"] == ["slug"] and not data["unique"]
    )
    _rename_index("catalog_category", old, "slug_by_another_name", ["slug"])
    _, differences = verify(capsys)
    found = find(differences, table="catalog_category", kind="renamed")
    assert found["verdict"] == "name-drift"
    assert "'slug_by_another_name'" in found["detail"] and old in found["what"]
    assert found["migrations"] and all(m.startswith("catalog.") for m in found["migrations"])


@pytest.mark.needs_server
def test_changed_nullability_is_attributed_to_the_model_s_migration(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """shop_author.name made nullable by hand."""
    migrate()
    if VENDOR == "postgresql":
        run('ALTER TABLE "shop_author" ALTER COLUMN "name" DROP NOT NULL')
    elif VENDOR == "mysql":
        run("ALTER TABLE `shop_author` MODIFY `name` varchar(100) NULL")
    else:
        create = _sqlite_sql("shop_author").replace('"name" varchar(100) NOT NULL', '"name" varchar(100) NULL')
        assert '"name" varchar(100) NULL' in create
        run(
            "PRAGMA foreign_keys = OFF",
            'ALTER TABLE "shop_author" RENAME TO "shop_author_old"',
            create,
            'INSERT INTO "shop_author" SELECT * FROM "shop_author_old"',
            'DROP TABLE "shop_author_old"',
        )
    _, differences = verify(capsys)
    found = find(differences, table="shop_author", what="column name")
    assert (found["kind"], found["verdict"]) == ("changed", "changed")
    assert "null is True" in found["detail"]
    assert found["migrations"] == ["shop.0001_initial", "shop.0004_book_changes"]  # created, then altered


@pytest.mark.needs_server
def test_applied_by_hand_but_not_recorded_suggests_byhand_record(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """shop 0009's index exists, its row does not: the pending migration is named."""
    migrate()
    migrate("shop", "0008")
    run(f"CREATE INDEX {q('shop_book_promo_idx')} ON {q('shop_book')} ({q('promo')})")
    _, differences = verify(capsys)
    found = find(differences, table="shop_book", what="index shop_book_promo_idx (promo)")
    assert found["verdict"] == "applied-not-recorded"
    assert found["migrations"] == ["shop.0009_concurrent_index"]
    assert "byhand record shop 0009_concurrent_index" in found["detail"]


@pytest.mark.needs_server
def test_recorded_but_never_run_is_attributed_to_that_migration(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """shop 0009 recorded by hand, its SQL never run: the missing index names it."""
    migrate()
    migrate("shop", "0008")
    call_command("byhand", "record", "shop", "0009", "--database", "default", verbosity=0)
    _, differences = verify(capsys)
    found = find(differences, table="shop_book", kind="missing")
    assert found["what"] == "index shop_book_promo_idx (promo)"
    assert (found["verdict"], found["migrations"]) == ("recorded-not-applied", ["shop.0009_concurrent_index"])


@pytest.mark.needs_server
def test_a_partly_recorded_squash_is_reported(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """One replaced row of catalog's squash deleted: the squash and the missing row are named."""
    migrate()
    run("DELETE FROM django_migrations WHERE app = 'catalog' AND name = '0002_category_slug'")
    status, differences = verify(capsys)
    assert status == 1
    found = find(differences, kind="partly-recorded-squash")
    assert found["migrations"] == ["catalog.0001_squashed_0003_alter_category_slug"]
    assert "missing: catalog.0002_category_slug" in found["detail"]


@pytest.mark.needs_server
def test_a_foreign_key_s_on_delete_changed_by_hand_is_reported(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """catalog_category.parent made ON DELETE CASCADE by hand (Django wrote none): the same
    name, columns and target, another action; attributed to the migration of the column."""
    migrate()
    name = next(n for n, data in _constraints("catalog_category").items() if data["foreign_key"])
    target = f"FOREIGN KEY ({q('parent_id')}) REFERENCES {q('catalog_category')} ({q('id')}) ON DELETE CASCADE"
    if VENDOR == "postgresql":
        run(
            f"ALTER TABLE {q('catalog_category')} DROP CONSTRAINT {q(name)}",
            f"ALTER TABLE {q('catalog_category')} ADD CONSTRAINT {q(name)} {target} DEFERRABLE INITIALLY DEFERRED",
        )
    elif VENDOR == "mysql":
        run(
            f"ALTER TABLE {q('catalog_category')} DROP FOREIGN KEY {q(name)}",
            f"ALTER TABLE {q('catalog_category')} ADD CONSTRAINT {q(name)} {target}",
        )
    else:
        old = _sqlite_sql("catalog_category")
        create = old.replace(
            'REFERENCES "catalog_category" ("id") ', 'REFERENCES "catalog_category" ("id") ON DELETE CASCADE '
        )
        assert create != old
        indexes = _sqlite_indexes("catalog_category")
        run(
            "PRAGMA foreign_keys = OFF",
            'ALTER TABLE "catalog_category" RENAME TO "catalog_category_old"',
            create,
            'INSERT INTO "catalog_category" SELECT * FROM "catalog_category_old"',
            'DROP TABLE "catalog_category_old"',
            *indexes,
        )
    status, differences = verify(capsys)
    assert status == 1
    found = find(differences, table="catalog_category", kind="changed")
    assert found["what"] == f"foreign key {name} (parent_id)"
    assert found["detail"].startswith("ON DELETE is CASCADE, migrations say ")
    assert found["migrations"] == ["catalog.0004_category_parent"]
    assert [d for d in differences if d is not found] == []


@pytest.mark.needs_server
def test_database_level_on_delete_has_no_drift_and_its_loss_is_reported(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Django 6.1's DB_CASCADE/DB_SET_NULL/DB_SET_DEFAULT: migrated, nothing differs; on the
    server vendors, the DB_CASCADE foreign key made again without ON DELETE is reported."""
    if not hasattr(models, "DB_CASCADE"):
        pytest.skip("database-level on_delete is Django 6.1's")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.db_on_delete"}):
        migrate("catalog")
        assert verify(capsys) == (0, [])
        if VENDOR == "sqlite":
            return  # rebuilding an SQLite table by hand: see the test above
        name = next(
            n
            for n, data in _constraints("catalog_item").items()
            if data["columns"] == ["extra_id"] and data["foreign_key"]
        )
        drop = "DROP CONSTRAINT" if VENDOR == "postgresql" else "DROP FOREIGN KEY"
        run(
            f"ALTER TABLE {q('catalog_item')} {drop} {q(name)}",
            f"ALTER TABLE {q('catalog_item')} ADD CONSTRAINT {q(name)} "
            f"FOREIGN KEY ({q('extra_id')}) REFERENCES {q('catalog_shelf')} ({q('id')})",
        )
        _, differences = verify(capsys)
    found = find(differences, table="catalog_item", kind="changed")
    assert found["detail"].startswith("ON DELETE is ") and found["detail"].endswith(", migrations say CASCADE")
    assert found["migrations"] == ["catalog.0002_change_on_delete"]


def _rename_index(table: str, old: str, new: str, columns: list[str]) -> None:
    """Rename an index by hand (SQLite: drop it and make it again on ``columns``)."""
    if VENDOR == "postgresql":
        run(f"ALTER INDEX {q(old)} RENAME TO {q(new)}")
    elif VENDOR == "mysql":
        run(f"ALTER TABLE {q(table)} RENAME INDEX {q(old)} TO {q(new)}")
    else:
        run(f"DROP INDEX {q(old)}", f"CREATE INDEX {q(new)} ON {q(table)} ({', '.join(q(c) for c in columns)})")


def _constraints(table: str) -> dict[str, Any]:
    connection = connections["default"]
    with connection.cursor() as cursor:
        return dict(connection.introspection.get_constraints(cursor, table))


def _sqlite_sql(table: str) -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        return str(cursor.fetchone()[0])


def _sqlite_indexes(table: str) -> list[str]:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table]
        )
        return [str(sql) for (sql,) in cursor.fetchall()]


@pytest.mark.needs_server
def test_verify_errors_exit_2(db: dict[str, Any]) -> None:
    """A scratch alias that does not exist: exit 2, not 1 (which means drift)."""
    migrate()
    with pytest.raises(CommandError) as error:
        call_command("byhand", "verify", "--database", "default", "--scratch-database", "nowhere")
    assert error.value.returncode == 2


@pytest.mark.needs_server
def test_columns_of_an_extension_s_types_have_no_drift(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """#18.2: hstore and citext columns made by migrate: their types have other OIDs on the
    scratch copy (made again by CREATE EXTENSION there), the same names: exit 0, nothing differs."""
    if VENDOR != "postgresql":
        pytest.skip("hstore and citext are PostgreSQL extensions")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.extensions"}):
        migrate("catalog")
        assert verify(capsys) == (0, [])


@pytest.mark.needs_server
def test_what_a_backwards_migrate_leaves_is_not_advised_for_recording(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#22.1: migrate, then `migrate catalog 0001`: 0002's RunSQL index (reversed by noop) stays,
    and on MariaDB the foreign-key index Django's backwards makes. 0002's column and index are
    gone, so recording it is not suggested; no 'changed' line (MariaDB's foreign key, listed without
    the implicit index InnoDB dropped, printed the same on both sides and advised recording)."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.backwards_leftovers"}):
        migrate("catalog")
        migrate("catalog", "0001")
        status, differences = verify(capsys)
    assert status == 1
    advised = [d for d in differences if d["verdict"] == "applied-not-recorded" or "byhand record" in d["detail"]]
    assert advised == []
    assert [d for d in differences if d["kind"] == "changed"] == []
    left = find(differences, table="catalog_item", what="index catalog_item_title_idx (title)")
    assert (left["verdict"], left["migrations"]) == ("partly-applied", ["catalog.0002_item_note_index"])
    lacks = "the rest of what it does (catalog_item column note; catalog_item index catalog_item_cat_title_idx"
    assert lacks in left["detail"], left["detail"]
    others = [d for d in differences if d is not left]
    if VENDOR == "mysql":
        (fk_index,) = others
        assert (fk_index["kind"], fk_index["verdict"]) == ("extra", "unexplained")
        assert fk_index["what"].startswith("index catalog_item_category_id_"), fk_index
    else:
        assert others == []


@pytest.mark.needs_server
def test_a_pending_migration_made_otherwise_by_hand_is_not_advised_for_recording(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#22.1: after `migrate catalog 0001`, everything 0002 creates is there, its column made by
    hand as varchar(30) where 0002 makes varchar(20): not applied as 0002 applies it, so record
    is not suggested and the column is named as what differs."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.backwards_leftovers"}):
        migrate("catalog")
        migrate("catalog", "0001")
        item = q("catalog_item")
        run(
            f"ALTER TABLE {item} ADD COLUMN {q('note')} varchar(30) DEFAULT '' NOT NULL",
            f"CREATE INDEX {q('catalog_item_cat_title_idx')} ON {item} ({q('category_id')}, {q('title')})",
        )
        status, differences = verify(capsys)
    assert status == 1
    advised = [d for d in differences if d["verdict"] == "applied-not-recorded" or "byhand record" in d["detail"]]
    assert advised == []
    note = find(differences, table="catalog_item", what="column note")
    assert (note["kind"], note["verdict"], note["migrations"]) == (
        "extra",
        "partly-applied",
        ["catalog.0002_item_note_index"],
    )
    assert "the rest of what it does (catalog_item column note): not applied as a whole" in note["detail"]


@pytest.mark.needs_server
def test_a_changed_precision_is_named_as_the_database_names_it(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#16.17: numeric(12,2) where the migrations say numeric(10,2): changed, precision and scale
    printed (Django's type codes said the same for both). SQLite keeps no precision: Django
    declares a DecimalField as plain "decimal"."""
    if VENDOR == "sqlite":
        pytest.skip('SQLite: Django declares a DecimalField as "decimal", without precision or scale')
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.decimal"}):
        migrate("catalog")
        if VENDOR == "postgresql":
            run('ALTER TABLE "catalog_category" ALTER COLUMN "price" TYPE numeric(12, 2)')
        else:
            run("ALTER TABLE `catalog_category` MODIFY `price` decimal(12,2) NOT NULL")
        status, differences = verify(capsys)
    name = "numeric" if VENDOR == "postgresql" else "decimal"
    found = find(differences, table="catalog_category", what="column price")
    assert (status, found["kind"]) == (1, "changed")
    assert found["detail"] == f"type is '{name}(12,2)', migrations say '{name}(10,2)'"
    assert found["migrations"] == ["catalog.0001_initial"]


@pytest.mark.needs_server
def test_a_rename_applied_but_not_recorded_follows_the_foreign_keys_that_point_at_it(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22, item 3: after each pending migration verify introspects again only the
    tables its SQL names (and those whose foreign keys point at them): a rename applied by
    hand is still all that pending migration's, the new table and shop_book's foreign key
    to it, and what it renamed away is what the recorded set lacks."""
    migrate("shop", "0005")
    run(f"DELETE FROM {q('django_migrations')} WHERE app = 'shop' AND name = '0005_rename_publisher'")
    status, differences = verify(capsys)
    verdicts = {(d["table"], d["what"].split(" (")[0]): d["verdict"] for d in differences}
    assert status == 1
    assert verdicts.get(("shop_imprint", "table")) == "applied-not-recorded", verdicts
    assert verdicts.get(("shop_publisher", "table")) == "recorded-not-applied", verdicts
    book = {what: verdict for (table, what), verdict in verdicts.items() if table == "shop_book"}
    new_key = [verdict for what, verdict in book.items() if "publisher" not in what or "imprint" in what]
    assert new_key == ["applied-not-recorded"], verdicts
    assert set(verdicts.values()) == {"applied-not-recorded", "recorded-not-applied"}, verdicts


def test_only_the_tables_a_migration_s_sql_names_are_introspected_again() -> None:
    """Issue 22, item 3: the tables a pending migration's SQL names (any case, quoted or
    not), those new since, and, where it renames or drops a table or column, those with a
    foreign key to one of them (old or new name). A foreign key added, or SQLite's remake
    of a table under its own name, changes no other table's foreign keys."""
    fk = ("foreign key", ("publisher_id",), ("shop_publisher", "id"), None, "NO ACTION")
    since = {
        "shop_publisher": {"columns": {}, "constraints": {}},
        "shop_book": {"columns": {}, "constraints": {"book_publisher_fk": fk}},
        "shop_author": {"columns": {}, "constraints": {}},
        "shop_review": {"columns": {}, "constraints": {}},
    }
    names = ["shop_imprint", "shop_book", "shop_author", "shop_review"]
    renamed = 'ALTER TABLE "SHOP_PUBLISHER" RENAME TO "shop_imprint"'
    assert _touched(names, since, renamed) == {"shop_imprint", "shop_book"}
    assert _touched(names, since, "ALTER TABLE `shop_author` ADD COLUMN `x` int") == {"shop_imprint", "shop_author"}
    assert _touched(list(since), since, "") == set()
    tables = list(since)
    added = 'ALTER TABLE "shop_review" ADD CONSTRAINT "r_fk" FOREIGN KEY ("p") REFERENCES "shop_publisher" ("id")'
    assert _touched(tables, since, added) == {"shop_review", "shop_publisher"}
    remade = (
        'CREATE TABLE "new__shop_publisher" ("id" integer NOT NULL PRIMARY KEY, "name" text NOT NULL)\n'
        'INSERT INTO "new__shop_publisher" ("id") SELECT "id" FROM "shop_publisher"\n'
        'DROP TABLE "shop_publisher"\n'
        'ALTER TABLE "new__shop_publisher" RENAME TO "shop_publisher"'
    )
    assert _touched(tables, since, remade) == {"shop_publisher"}
    assert _touched(tables, since, 'DROP TABLE "shop_publisher" CASCADE') == {"shop_publisher", "shop_book"}
    renamed_column = "ALTER TABLE `shop_publisher` RENAME COLUMN `id` TO `key`"
    assert _touched(tables, since, renamed_column) == {"shop_publisher", "shop_book"}


def _dump_and_reload(settings: dict[str, Any], table: str) -> None:
    """``mysqldump | mariadb`` of one table into its own database, as a copy is made."""
    args, env = connections["default"].client.settings_to_cmd_args_env(settings, [])
    environ = {**os.environ, **(env or {})}
    dump = subprocess.run(["mysqldump", *args[1:], table], env=environ, capture_output=True, text=True, check=True)
    subprocess.run(["mysql", *args[1:]], input=dump.stdout, env=environ, capture_output=True, text=True, check=True)
    connections["default"].close()


@pytest.mark.needs_server
def test_unnamed_checks_renamed_by_a_copy_have_no_drift(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """#18.4: positive-integer columns' inline checks, one column renamed: nothing differs after
    migrate, nor on MariaDB after a mysqldump copy (the renamed column's check then named after
    it, not after the old column, and every later __unnamed_constraint_<n>__ shifted)."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.unnamed_checks"}):
        migrate("catalog")
        assert verify(capsys) == (0, [])
        if VENDOR != "mysql":
            return
        assert "aisle" in _constraints("catalog_category")  # MariaDB kept the old column's name
        _dump_and_reload(db, "catalog_category")
        assert "aisle" not in _constraints("catalog_category")
        assert verify(capsys) == (0, [])


@pytest.mark.needs_server
def test_an_unnamed_check_changed_dropped_or_added_by_hand_is_reported(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#18.4: on a copy whose unnamed checks have other names than migrate gives them, a
    check's clause changed, one dropped and one added by hand are each reported, by clause."""
    if VENDOR != "mysql":
        pytest.skip("MariaDB names a column's inline check after the column")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.unnamed_checks"}):
        migrate("catalog")
        _dump_and_reload(db, "catalog_category")
        run(
            "ALTER TABLE `catalog_category` MODIFY `shelf` int unsigned NOT NULL CHECK (`shelf` >= 5)",
            "ALTER TABLE `catalog_category` MODIFY `stock` int unsigned NOT NULL",
            "ALTER TABLE `catalog_category` MODIFY `floor` int NOT NULL CHECK (`floor` > 0)",
        )
        status, differences = verify(capsys)
    lines = sorted((d["kind"], d["what"].split(" ")[-1], d["detail"], tuple(d["migrations"])) for d in differences)
    assert (status, lines) == (
        1,
        [
            (
                "changed",
                "(shelf)",
                "clause is '`shelf` >= 5', migrations say '`shelf` >= 0'",
                ("catalog.0001_initial",),
            ),
            ("extra", "(floor)", "no recorded migration creates CHECK (`floor` > 0)", ()),
            ("missing", "(stock)", "CHECK (`stock` >= 0) does not exist", ("catalog.0001_initial",)),
        ],
    )


@pytest.mark.needs_server
def test_the_order_of_unique_keys_is_no_difference(db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """#18: MariaDB lists alter_unique_together's two UNIQUE KEYs in the order Django made
    them, which follows PYTHONHASHSEED (a set); made in the other order, nothing differs."""
    if VENDOR != "mysql":
        pytest.skip("MariaDB lists keys in the order they were made")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.unique_order"}):
        migrate("catalog")
        first, second = _unique_keys("catalog_category")
        columns = ", ".join(q(c) for c in _constraints("catalog_category")[first]["columns"])
        run(
            f"ALTER TABLE {q('catalog_category')} DROP INDEX {q(first)}",
            f"ALTER TABLE {q('catalog_category')} ADD CONSTRAINT {q(first)} UNIQUE ({columns})",
        )
        assert _unique_keys("catalog_category") == [second, first]
        assert verify(capsys) == (0, [])


def _unique_keys(table: str) -> list[str]:
    """The names of ``table``'s UNIQUE KEYs, in the order the server lists them."""
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SHOW INDEX FROM {q(table)} WHERE Non_unique = 0 AND Key_name != 'PRIMARY'")
        return list(dict.fromkeys(str(row[2]) for row in cursor.fetchall()))


#: What Django's own backwards names otherwise than its forwards, per vendor, after
#: `migrate catalog` and `migrate catalog 0001` of scenarios.backwards_names (SQLite makes
#: the table again, with the names of the state, on each AlterField and AddField).
_BACKWARDS_NAMES = {
    "postgresql": [
        "foreign key catalog_item_category_id_a5ca86ac_fk_catalog_category_id (category_id)",
        "index catalog_item_category_id_a5ca86ac (category_id)",
        "index catalog_item_title_tag_c9525b6b_idx (title, tag)",
        "unique catalog_item_code_key (code)",
    ],
    "mysql": [
        "foreign key catalog_item_category_id_a5ca86ac_fk_catalog_category_id (category_id)",
        "index catalog_item_title_tag_c9525b6b_idx (title, tag)",
        "unique code (code)",
    ],
    "sqlite": ["index catalog_item_title_tag_c9525b6b_idx (title, tag)"],
}


@pytest.mark.needs_server
def test_the_names_django_s_own_backwards_gives_are_no_drift(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#18.5: `migrate catalog` then `migrate catalog 0001`: going back, Django names what it
    makes again after the table's later name (an AddField's foreign key after RenameModel),
    as AlterField does (a unique constraint `_uniq`, not the server's `_key`), and keeps
    RenameIndex(old_fields=...)'s name. Printed as backwards-names, and verify exits 0."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.backwards_names"}):
        migrate("catalog")
        migrate("catalog", "0001")
        status, differences = verify(capsys)
    assert sorted(d["what"] for d in differences) == _BACKWARDS_NAMES[VENDOR]
    assert {(d["kind"], d["verdict"], tuple(d["migrations"])) for d in differences} == {
        ("renamed-by-migrate", "backwards-names", ("catalog.0001_initial",))
    }
    index = find(differences, what="index catalog_item_title_tag_c9525b6b_idx (title, tag)")
    assert index["detail"] == "exists as 'catalog_item_title_tag_idx', the name Django's own backwards gives it"
    assert status == 0


@pytest.mark.needs_server
def test_what_is_changed_by_hand_after_a_backwards_migrate_is_still_drift(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#18.5: after the same backwards, the index RenameIndex left is renamed by hand (name
    drift) and the unique constraint AlterField made again is made on other columns
    (missing and unexplained; SQLite keeps it in the table's SQL): exit 1."""
    table, left, uniq = "catalog_item", "catalog_item_title_tag_idx", "catalog_item_code_c9b960ef_uniq"
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.backwards_names"}):
        migrate("catalog")
        migrate("catalog", "0001")
        _rename_index(table, left, "by_hand_idx", ["title", "tag"])
        if VENDOR != "sqlite":
            drop = "CONSTRAINT" if VENDOR == "postgresql" else "INDEX"
            run(
                f"ALTER TABLE {q(table)} DROP {drop} {q(uniq)}",
                f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(uniq)} UNIQUE ({q('code')}, {q('tag')})",
            )
        status, differences = verify(capsys)
    assert status == 1
    found = find(differences, what="index catalog_item_title_tag_c9525b6b_idx (title, tag)")
    assert (found["verdict"], found["detail"]) == (
        "name-drift",
        "exists as 'by_hand_idx' (same definition, another name)",
    )
    if VENDOR != "sqlite":
        unique = {"postgresql": "catalog_item_code_key", "mysql": "code"}[VENDOR]
        assert find(differences, what=f"unique {unique} (code)")["verdict"] == "recorded-not-applied"
        assert find(differences, what=f"unique {uniq} (code, tag)")["verdict"] == "unexplained"
    others = {d["verdict"] for d in differences if "title_tag" not in d["what"] and "code" not in d["what"]}
    assert others <= {"backwards-names"}


@pytest.mark.needs_server
def test_a_backwards_name_a_pending_migration_finds_by_its_name_is_drift(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#18.5: 0002's backwards code renames 0001's index, and pending 0003 removes it by the
    name 0001 gives it: Django's own backwards made the name, but migrate would fail on it,
    so it stays name drift (exit 1) and names 0003."""
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.backwards_referred"}):
        migrate("catalog")
        migrate("catalog", "0001")
        status, differences = verify(capsys)
    (found,) = differences
    assert (status, found["what"], found["verdict"]) == (1, "index catalog_item_title_idx (title)", "name-drift")
    assert found["detail"] == (
        "exists as 'catalog_item_title_old', the name Django's own backwards gives it,"
        " but pending catalog.0003_remove_index finds it by the name 'catalog_item_title_idx'"
    )


@pytest.mark.needs_server
def test_without_a_way_back_another_name_stays_name_drift(
    db: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """#18.5: pending 0002 cannot be unapplied (RunSQL without reverse), so the scratch copy
    has no backwards to compare with: a primary key renamed by hand is name drift (exit 1),
    and verify does not fail."""
    if VENDOR != "postgresql":
        pytest.skip("MariaDB's primary key is always PRIMARY, SQLite's has no name")
    with override_settings(MIGRATION_MODULES={"catalog": "scenarios.irreversible"}):
        migrate("catalog", "0001")
        run(f"ALTER TABLE {q('catalog_category')} RENAME CONSTRAINT {q('catalog_category_pkey')} TO {q('by_hand')}")
        status, differences = verify(capsys)
    (found,) = differences
    assert (status, found["what"], found["verdict"]) == (1, "primary key catalog_category_pkey (id)", "name-drift")
