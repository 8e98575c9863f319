"""A database's schema as Django's introspection sees it, and the differences between two."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from byhand.vendors import get_vendor

__all__ = ["Difference", "Schema", "compare_schemas", "find_object", "object_name", "snapshot"]

Schema = dict[str, dict[str, Any]]  # table -> {"columns": {...}, "constraints": {...}}


@dataclass(frozen=True)
class Difference:
    """One thing the live schema has, lacks or has otherwise than the recorded migrations imply."""

    kind: str  # missing, extra, changed, renamed, renamed-by-migrate, partly-recorded-squash
    table: str
    what: str  # "table", "column price", "index shop_book_promo_idx", ...
    detail: str
    migrations: tuple[str, ...] = ()  # the migration(s) that create or change it
    verdict: str = ""  # recorded-not-applied, applied-not-recorded, name-drift, backwards-names, unexplained, ...

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
            checks = vendor.check_clauses(cursor, name)
            constraints = {
                constraint: _signature(data, actions.get(constraint), _check_of(constraint, data, checks))
                for constraint, data in introspection.get_constraints(cursor, name).items()
            }
            schema[name] = {"columns": columns, "constraints": constraints}
    return schema


def _touched(names: list[str], since: Schema, sql: str) -> set[str]:
    """The tables to introspect again: new ones, those ``sql`` names (any case), and, when
    ``sql`` may change the foreign keys of tables it does not name (a table or column
    renamed or dropped), those with a foreign key to one of them."""
    words = {word.lower() for word in re.findall(r"\w+", sql)}
    touched = {name for name in names if name not in since or name.lower() in words}
    if not _moves_foreign_keys(sql):
        return touched
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


#: What may change the foreign keys of tables a statement does not name: a table or column
#: renamed (they point at it by name; MySQL's CHANGE renames a column too), or dropped
#: (PostgreSQL's CASCADE drops the foreign keys that point at it).
_MOVES_FOREIGN_KEYS = re.compile(r"\b(?:RENAME|CHANGE|DROP\s+TABLE|DROP\s+COLUMN|CASCADE)\b", re.IGNORECASE)
#: SQLite's remake of a table keeps its name: CREATE TABLE "new__t" ...; DROP TABLE "t";
#: ALTER TABLE "new__t" RENAME TO "t".
_REMADE = re.compile(r"\bnew__(\w+)", re.IGNORECASE)


def _moves_foreign_keys(sql: str) -> bool:
    """Whether ``sql`` may change foreign keys of tables it does not name (see
    _MOVES_FOREIGN_KEYS); SQLite's remakes of a table under its own name do not. Adding a
    foreign key names only its own table and the one it points at, and changes neither's
    other foreign keys: the tables pointing at a central table (auth_user) are not all
    introspected again whenever a migration points one more at it."""
    for table in set(_REMADE.findall(sql)):
        quoted = rf"[`\"]?{re.escape(table)}[`\"]?"
        sql = re.sub(rf"\bALTER TABLE [`\"]?new__{quoted} RENAME TO {quoted}", " ", sql, flags=re.IGNORECASE)
        sql = re.sub(rf"\bDROP TABLE {quoted}(?![\w`\"])", " ", sql, flags=re.IGNORECASE)
    return bool(_MOVES_FOREIGN_KEYS.search(sql))


#: Django's get_constraints() flags, in the order that decides what a constraint is.
_KINDS = (("primary_key", "primary key"), ("foreign_key", "foreign key"), ("check", "check"), ("unique", "unique"))


def _signature(
    data: dict[str, Any], on_delete: str | None = None, check: tuple[str, bool] | None = None
) -> tuple[Any, ...]:
    """What a constraint or index is, without its name: kind, columns, FK target, index
    type, a foreign key's ON DELETE action, and a check's clause and whether the server
    named it (see _compare_unnamed_checks).

    A foreign key has no index type of its own: MySQL/MariaDB list the index InnoDB made
    for it under its name, and drop that index silently when another one starts with
    its column (a composite index or unique constraint), so the type comes and goes as other indexes do."""
    kind = next((kind for flag, kind in _KINDS if data.get(flag)), "index")
    foreign_key = tuple(data.get("foreign_key") or ())
    index_type = None if foreign_key else data.get("type")
    signature = (kind, tuple(data.get("columns") or ()), foreign_key, index_type, on_delete if foreign_key else None)
    return signature + check if check is not None and data.get("check") else signature


def _check_of(name: str, data: dict[str, Any], checks: dict[str, tuple[str, bool]]) -> tuple[str, bool] | None:
    """The vendor's (clause, unnamed) of the check Django's introspection calls ``name``.
    Django renames a MySQL/MariaDB check named after its only column
    __unnamed_constraint_<n>__ (n counts such checks in the server's order)."""
    columns = data.get("columns") or []
    found = checks.get(name)
    if found is None and name.startswith("__unnamed_constraint_") and len(columns) == 1:
        found = checks.get(columns[0])
    return found


def _clause(signature: tuple[Any, ...]) -> str | None:
    return signature[5] if len(signature) > 5 else None


def _is_unnamed(signature: tuple[Any, ...]) -> bool:
    return len(signature) > 6 and bool(signature[6])


def _foreign_table(signature: tuple[Any, ...]) -> str | None:
    """The table a foreign key's signature points at (None for other constraints)."""
    foreign_key = signature[2]
    return str(foreign_key[0]) if foreign_key else None


def _label(name: str, signature: tuple[Any, ...]) -> str:
    kind, columns = signature[0], signature[1]
    # Django's SQLite introspection gives an index's expression (lower("title")) as None.
    return f"{kind} {name} ({', '.join(column or 'an expression' for column in columns)})"


def _describe(name: str, signature: tuple[Any, ...]) -> str:
    """The label and every other part of the signature, so that two signatures that
    differ never print the same."""
    foreign_key, index_type, on_delete = signature[2:5]
    text = _label(name, signature)
    if foreign_key:
        text += f" references {'.'.join(foreign_key)} ON DELETE {on_delete}"
    if index_type is not None:
        text += f" using {index_type}"
    if _clause(signature) is not None:
        text += f" CHECK ({_clause(signature)})"
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


def object_name(what: str) -> str | None:
    """The name of the constraint or index a Difference's ``what`` labels, or None (a
    table, a column)."""
    for _flag, kind in (*_KINDS, ("", "index")):
        if what.startswith(f"{kind} ") and " (" in what:
            return what[len(kind) + 1 : what.rfind(" (")]
    return None


# -- comparing ----------------------------------------------------------------------------


def compare_schemas(expected: Schema, live: Schema, *, returned: Schema | None = None) -> Iterator[Difference]:
    """Every difference, unattributed: missing/extra tables, columns, constraints; a
    constraint with the same definition under another name is a rename (name drift),
    "renamed-by-migrate" when ``returned`` (the expected schema as Django's own backwards
    leaves it, see verifying) has it under that name and not under the expected one."""
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
        back = (returned or {}).get(table, {}).get("constraints", {})
        yield from _compare_constraints(table, want["constraints"], have["constraints"], back)


def _compare_constraints(
    table: str, want: dict[str, Any], have: dict[str, Any], back: dict[str, Any]
) -> Iterator[Difference]:
    yield from _compare_unnamed_checks(
        table,
        {name: sig for name, sig in want.items() if _is_unnamed(sig)},
        {name: sig for name, sig in have.items() if _is_unnamed(sig)},
    )
    want = {name: sig for name, sig in want.items() if not _is_unnamed(sig)}
    have = {name: sig for name, sig in have.items() if not _is_unnamed(sig)}
    unmatched_have = {name: sig for name, sig in have.items() if name not in want}
    for name, signature in sorted(want.items()):
        if name in have:
            if have[name] != signature:
                yield Difference("changed", table, _label(name, signature), _changed(name, signature, name, have[name]))
            continue
        same = [other for other, sig in unmatched_have.items() if sig == signature]
        if same:
            del unmatched_have[same[0]]
            if back.get(same[0]) == signature and name not in back:
                detail = f"exists as {same[0]!r}, the name Django's own backwards gives it"
                yield Difference("renamed-by-migrate", table, _label(name, signature), detail)
                continue
            detail = f"exists as {same[0]!r} (same definition, another name)"
            yield Difference("renamed", table, _label(name, signature), detail)
        else:
            yield Difference("missing", table, _label(name, signature), "does not exist")
    for name, signature in sorted(unmatched_have.items()):
        yield Difference("extra", table, _label(name, signature), "no recorded migration creates it")


def _changed(name: str, signature: tuple[Any, ...], other: str, have: tuple[Any, ...]) -> str:
    """How ``have`` (named ``other`` on the live side) differs from ``signature``."""
    if have[:4] == signature[:4] and have[5:] == signature[5:]:
        return f"ON DELETE is {have[4]}, migrations say {signature[4]}"
    if have[:5] == signature[:5]:
        return f"clause is {_clause(have)!r}, migrations say {_clause(signature)!r}"
    return f"is {_describe(other, have)}, migrations say {_describe(name, signature)}"


def _compare_unnamed_checks(table: str, want: dict[str, Any], have: dict[str, Any]) -> Iterator[Difference]:
    """Checks whose names the server chose, matched by (columns, clause), never by name.

    MariaDB names a column's inline CHECK after the column when the column is made, and
    keeps that name when the column is renamed; a dump and reload names it after the new
    column; Django calls a check named after its only column __unnamed_constraint_<n>__,
    n counting them in order. So the same migrations leave other names by another path,
    and one renamed check shifts every later n. No migration names such a check and Django
    finds it by its column, so another name is no difference (not even name drift); the
    same columns with another clause are a changed check."""
    unmatched = dict(have)
    left = []
    for name, signature in sorted(want.items()):
        same = next((other for other, sig in sorted(unmatched.items()) if sig == signature), None)
        if same is None:
            left.append((name, signature))
        else:
            del unmatched[same]
    for name, signature in left:
        other = next((other for other, sig in sorted(unmatched.items()) if sig[1] == signature[1]), None)
        if other is None:
            yield Difference("missing", table, _label(name, signature), f"CHECK ({_clause(signature)}) does not exist")
        else:
            detail = _changed(name, signature, other, unmatched.pop(other))
            yield Difference("changed", table, _label(name, signature), detail)
    for name, signature in sorted(unmatched.items()):
        detail = f"no recorded migration creates CHECK ({_clause(signature)})"
        yield Difference("extra", table, _label(name, signature), detail)
