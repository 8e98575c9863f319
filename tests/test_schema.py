"""compare_schemas without a database: what counts as missing, extra, changed and renamed."""

from __future__ import annotations

from typing import Any

from byhand.planning.schema import Difference, compare_schemas, find_object


def table(columns: dict[str, tuple[Any, ...]], constraints: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    return {"columns": columns, "constraints": constraints}


INDEX = ("index", ("slug",), (), "btree")
PK = ("primary key", ("id",), (), None)


def kinds(expected: dict[str, Any], live: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(d.kind, d.table, d.what) for d in compare_schemas(expected, live)]


def test_equal_schemas_have_no_difference() -> None:
    """The same tables, columns and constraints: nothing to report."""
    schema = {"t": table({"id": ("int", False, None)}, {"t_pkey": PK})}
    assert kinds(schema, schema) == []


def test_tables_and_columns_missing_extra_and_changed() -> None:
    """A missing table, an extra one, a missing and an extra column, a nullability change."""
    expected = {
        "gone": table({}, {}),
        "t": table({"id": ("int", False, None), "a": ("int", False, None), "b": ("text", False, None)}, {}),
    }
    live = {
        "new": table({}, {}),
        "t": table({"id": ("int", False, None), "b": ("text", True, None), "c": ("int", True, None)}, {}),
    }
    assert kinds(expected, live) == [
        ("missing", "gone", "table"),
        ("extra", "new", "table"),
        ("missing", "t", "column a"),
        ("extra", "t", "column c"),
        ("changed", "t", "column b"),
    ]
    changed = next(d for d in compare_schemas(expected, live) if d.kind == "changed")
    assert changed.detail == "null is True, migrations say False"


def test_the_same_definition_under_another_name_is_a_rename_not_missing_plus_extra() -> None:
    """Name drift: one 'renamed' difference; a different definition stays missing + extra."""
    expected = {"t": table({}, {"t_slug_idx": INDEX})}
    renamed = {"t": table({}, {"slug_by_hand": INDEX})}
    assert kinds(expected, renamed) == [("renamed", "t", "index t_slug_idx (slug)")]
    other = {"t": table({}, {"t_name_idx": ("index", ("name",), (), "btree")})}
    assert kinds(expected, other) == [
        ("missing", "t", "index t_slug_idx (slug)"),
        ("extra", "t", "index t_name_idx (name)"),
    ]


def test_a_difference_describes_itself_with_its_verdict_and_migrations() -> None:
    """What verify prints per difference."""
    difference = Difference(
        "missing", "t", "column a", "the column does not exist", ("app.0002_a",), "recorded-not-applied"
    )
    assert difference.describe() == "recorded-not-applied: t column a: the column does not exist (app.0002_a)"


def test_a_foreign_key_with_another_on_delete_is_changed() -> None:
    """Same name, columns and target, another ON DELETE action: one 'changed' that says so."""
    fk = ("foreign key", ("parent_id",), ("t", "id"), None, "NO ACTION")
    expected = {"t": table({}, {"t_parent_fk": fk})}
    live = {"t": table({}, {"t_parent_fk": (*fk[:4], "CASCADE")})}
    (difference,) = compare_schemas(expected, live)
    assert (difference.kind, difference.what) == ("changed", "foreign key t_parent_fk (parent_id)")
    assert difference.detail == "ON DELETE is CASCADE, migrations say NO ACTION"


def test_a_changed_constraint_never_prints_the_same_on_both_sides() -> None:
    """#22.1: another foreign-key target, another index type: the detail names what differs,
    where it used to print "is foreign key t_parent_fk (parent_id), migrations say" the same."""
    fk = ("foreign key", ("parent_id",), ("t", "id"), None, "NO ACTION")
    index = ("index", ("slug",), (), "btree", None)
    expected = {"t": table({}, {"t_parent_fk": fk, "t_slug_idx": index})}
    other_fk = ("foreign key", ("parent_id",), ("u", "id"), None, "NO ACTION")
    live = {"t": table({}, {"t_parent_fk": other_fk, "t_slug_idx": ("index", ("slug",), (), "hash", None)})}
    details = [d.detail for d in compare_schemas(expected, live)]
    assert details == [
        "is foreign key t_parent_fk (parent_id) references u.id ON DELETE NO ACTION, "
        "migrations say foreign key t_parent_fk (parent_id) references t.id ON DELETE NO ACTION",
        "is index t_slug_idx (slug) using hash, migrations say index t_slug_idx (slug) using btree",
    ]


def test_find_object_finds_what_a_difference_names() -> None:
    """A table's columns, a column, a constraint by its name (a changed one's label may show
    the other side's columns), and None for what is not there."""
    fk = ("foreign key", ("parent_id",), ("t", "id"), None, "NO ACTION")
    schema = {"t": table({"id": ("int", False, None)}, {"t_parent_fk": fk})}
    assert find_object(schema, "t", "table") == {"id": ("int", False, None)}
    assert find_object(schema, "t", "column id") == ("int", False, None)
    assert find_object(schema, "t", "foreign key t_parent_fk (other_id)") == fk
    assert [
        find_object(schema, "u", "table"),
        find_object(schema, "t", "column gone"),
        find_object(schema, "t", "index t_parent (parent_id)"),
    ] == [None, None, None]


def test_unnamed_checks_are_matched_by_columns_and_clause_never_by_name() -> None:
    """#18.4: checks the server named (MariaDB: after their column, at the time) under other
    names, shifted by one: nothing differs; another clause on the same columns is changed,
    a check on other columns missing or extra, each saying its clause."""

    def check(column: str, clause: str) -> tuple[Any, ...]:
        return ("check", (column,), (), None, None, clause, True)

    expected = {
        "t": table(
            {},
            {
                "aisle": check("bay", "`bay` >= 0"),
                "__unnamed_constraint_1__": check("shelf", "`shelf` >= 0"),
                "__unnamed_constraint_2__": check("stock", "`stock` >= 0"),
            },
        )
    }
    copied = {
        "t": table(
            {},
            {
                "__unnamed_constraint_1__": check("bay", "`bay` >= 0"),
                "__unnamed_constraint_2__": check("shelf", "`shelf` >= 0"),
                "__unnamed_constraint_3__": check("stock", "`stock` >= 0"),
            },
        )
    }
    assert list(compare_schemas(expected, copied)) == []
    by_hand = {
        "t": table(
            {},
            {
                "__unnamed_constraint_1__": check("bay", "`bay` >= 0"),
                "__unnamed_constraint_2__": check("shelf", "`shelf` >= 5"),
                "__unnamed_constraint_3__": check("floor", "`floor` > 0"),
            },
        )
    }
    assert [(d.kind, d.what, d.detail) for d in compare_schemas(expected, by_hand)] == [
        (
            "changed",
            "check __unnamed_constraint_1__ (shelf)",
            "clause is '`shelf` >= 5', migrations say '`shelf` >= 0'",
        ),
        ("missing", "check __unnamed_constraint_2__ (stock)", "CHECK (`stock` >= 0) does not exist"),
        ("extra", "check __unnamed_constraint_3__ (floor)", "no recorded migration creates CHECK (`floor` > 0)"),
    ]


def test_a_named_check_is_matched_by_name_and_its_clause_compared() -> None:
    """#18.4: a check a migration names keeps name matching; another clause is changed, the
    same one under another name is name drift, and an unnamed one is no match for it."""
    named = ("check", ("price",), (), None, None, "`price` > 0", False)
    expected = {"t": table({}, {"price_positive": named})}
    changed = {"t": table({}, {"price_positive": (*named[:5], "`price` > 1", False)})}
    renamed = {"t": table({}, {"price_gt_0": named})}
    unnamed = {"t": table({}, {"__unnamed_constraint_1__": (*named[:6], True)})}
    assert [d.detail for d in compare_schemas(expected, changed)] == [
        "clause is '`price` > 1', migrations say '`price` > 0'"
    ]
    assert [(d.kind, d.what) for d in compare_schemas(expected, renamed)] == [
        ("renamed", "check price_positive (price)")
    ]
    assert [d.kind for d in compare_schemas(expected, unnamed)] == ["extra", "missing"]
