"""A database's schema as Django's introspection sees it, and the differences between two."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from byhand.vendors import get_vendor

__all__ = ["Difference", "Schema", "compare_schemas", "find_object", "snapshot"]

Schema = dict[str, dict[str, Any]]  # table -> {"columns": {...}, "constraints": {...}}


@dataclass(frozen=True)
class Difference:
    """One thing the live schema has, lacks or has otherwise than the recorded migrations imply."""

    kind: str  # missing, extra, changed, renamed, partly-recorded-squash
    table: str
    what: str  # "table", "column price", "index shop_book_promo_idx", ...
    detail: str
    migrations: tuple[str, ...] = ()  # the migration(s) that create or change it
    verdict: str = ""  # recorded-not-applied, applied-not-recorded, name-drift, unexplained, ...

    def describe(self) -> str:
        by = f" ({', '.join(self.migrations)})" if self.migrations else ""
        return f"{self.verdict}: {self.table} {self.what}: {self.detail}{by}"


# -- snapshots ---------------------------------------------------------------------------


def snapshot(connection: Any, *, ignore: set[str], since: Schema | None = None, touched: str = "") -> Schema:
    """Tables, columns (type as the database names it, nullability, default) and
    constraints/indexes, as Django introspects them.

    With ``since`` (a snapshot of the same database), only the tables that ``touched``
    (the SQL run since) names, the tables whose foreign keys point at those, and tables
    new since are introspected again; the others are taken from ``since``. Introspecting
    every table after each pending migration made verify's time grow with tables x
    pending migrations (23 minutes on a MariaDB nautobot)."""
    introspection = connection.introspection
    vendor = get_vendor(connection.vendor)
    schema: Schema = {}
    with connection.cursor() as cursor:
        names = [i.name for i in introspection.get_table_list(cursor) if i.name not in ignore and i.type == "t"]
        again = set(names) if since is None else _touched(names, since, touched)
        for name in names:
            if name not in again:
                schema[name] = since[name]  # type: ignore[index]
                continue
            types = vendor.column_type_names(cursor, name)
            columns = {
                c.name: (types[c.name], bool(c.null_ok), None if c.default is None else str(c.default))
                for c in introspection.get_table_description(cursor, name)
            }
            actions = vendor.foreign_key_actions(cursor, name)
            constraints = {
                constraint: _signature(data, actions.get(constraint))
                for constraint, data in introspection.get_constraints(cursor, name).items()
            }
            schema[name] = {"columns": columns, "constraints": constraints}
    return schema


def _touched(names: list[str], since: Schema, sql: str) -> set[str]:
    """The tables to introspect again: new ones, those ``sql`` names (any case), and those
    with a foreign key to one of them (a renamed table changes what they point at)."""
    words = {word.lower() for word in re.findall(r"\w+", sql)}
    touched = {name for name in names if name not in since or name.lower() in words}
    lowered = {name.lower() for name in touched} | (words & {name.lower() for name in since})
    for name in names:
        if name in touched:
            continue
        for signature in since[name]["constraints"].values():
            target = _foreign_table(signature)
            if target is not None and target.lower() in lowered:
                touched.add(name)
                break
    return touched


#: Django's get_constraints() flags, in the order that decides what a constraint is.
_KINDS = (("primary_key", "primary key"), ("foreign_key", "foreign key"), ("check", "check"), ("unique", "unique"))


def _signature(data: dict[str, Any], on_delete: str | None = None) -> tuple[Any, ...]:
    """What a constraint or index is, without its name: kind, columns, FK target, index
    type, and a foreign key's ON DELETE action.

    A foreign key has no index type of its own: MySQL/MariaDB list the index InnoDB made
    for it under its name, and drop that index silently when another one starts with
    its column (a composite index or unique constraint), so the type comes and goes as other indexes do."""
    kind = next((kind for flag, kind in _KINDS if data.get(flag)), "index")
    foreign_key = tuple(data.get("foreign_key") or ())
    index_type = None if foreign_key else data.get("type")
    return (kind, tuple(data.get("columns") or ()), foreign_key, index_type, on_delete if foreign_key else None)


def _foreign_table(signature: tuple[Any, ...]) -> str | None:
    """The table a foreign key's signature points at (None for other constraints)."""
    foreign_key = signature[2]
    return str(foreign_key[0]) if foreign_key else None


def _label(name: str, signature: tuple[Any, ...]) -> str:
    kind, columns = signature[0], signature[1]
    return f"{kind} {name} ({', '.join(columns)})"


def _describe(name: str, signature: tuple[Any, ...]) -> str:
    """The label and every other part of the signature, so that two signatures that
    differ never print the same."""
    _kind, _columns, foreign_key, index_type, on_delete = signature
    text = _label(name, signature)
    if foreign_key:
        text += f" references {'.'.join(foreign_key)} ON DELETE {on_delete}"
    if index_type is not None:
        text += f" using {index_type}"
    return text


def find_object(schema: Schema, table: str, what: str) -> Any:
    """What a Difference's (table, what) names, as ``schema`` has it, or None: a table's
    columns, a column's (type, null, default), a constraint's or index's signature (found
    by its name: a changed one's label shows the other side's columns)."""
    if table not in schema:
        return None
    if what == "table":
        return schema[table]["columns"]
    if what.startswith("column "):
        return schema[table]["columns"].get(what[len("column ") :])
    kinds = [kind for _flag, kind in _KINDS] + ["index"]
    for name, signature in schema[table]["constraints"].items():
        if any(what.startswith(f"{kind} {name} (") for kind in kinds):
            return signature
    return None


# -- comparing ----------------------------------------------------------------------------


def compare_schemas(expected: Schema, live: Schema) -> Iterator[Difference]:
    """Every difference, unattributed: missing/extra tables, columns, constraints; a
    constraint with the same definition under another name is a rename (name drift)."""
    for table in sorted(expected.keys() - live.keys()):
        yield Difference("missing", table, "table", "the table does not exist")
    for table in sorted(live.keys() - expected.keys()):
        yield Difference("extra", table, "table", "no recorded migration creates this table")
    for table in sorted(expected.keys() & live.keys()):
        want, have = expected[table], live[table]
        for column in sorted(want["columns"].keys() - have["columns"].keys()):
            yield Difference("missing", table, f"column {column}", "the column does not exist")
        for column in sorted(have["columns"].keys() - want["columns"].keys()):
            yield Difference("extra", table, f"column {column}", "no recorded migration adds this column")
        for column in sorted(want["columns"].keys() & have["columns"].keys()):
            w, h = want["columns"][column], have["columns"][column]
            for label, a, b in (("type", w[0], h[0]), ("null", w[1], h[1]), ("default", w[2], h[2])):
                if a != b:
                    yield Difference("changed", table, f"column {column}", f"{label} is {b!r}, migrations say {a!r}")
        yield from _compare_constraints(table, want["constraints"], have["constraints"])


def _compare_constraints(table: str, want: dict[str, Any], have: dict[str, Any]) -> Iterator[Difference]:
    unmatched_have = {name: sig for name, sig in have.items() if name not in want}
    for name, signature in sorted(want.items()):
        if name in have:
            if have[name] != signature:
                if have[name][:4] == signature[:4]:
                    detail = f"ON DELETE is {have[name][4]}, migrations say {signature[4]}"
                else:
                    detail = f"is {_describe(name, have[name])}, migrations say {_describe(name, signature)}"
                yield Difference("changed", table, _label(name, signature), detail)
            continue
        same = [other for other, sig in unmatched_have.items() if sig == signature]
        if same:
            del unmatched_have[same[0]]
            detail = f"exists as {same[0]!r} (same definition, another name)"
            yield Difference("renamed", table, _label(name, signature), detail)
        else:
            yield Difference("missing", table, _label(name, signature), "does not exist")
    for name, signature in sorted(unmatched_have.items()):
        yield Difference("extra", table, _label(name, signature), "no recorded migration creates it")
