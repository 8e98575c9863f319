"""Online forms: for a statement of Django's that would hold a table for as long as it reads
every row, the statements that reach the same schema while blocking no writes for that long
(``byhand sql --online``). PostgreSQL's, as its documentation gives them:

- ``CREATE [UNIQUE] INDEX`` takes ShareLock for the whole build: ``CONCURRENTLY`` instead,
  outside a transaction (a failed build leaves an INVALID index, which apply drops first
  when it runs the statement again);
- ``ADD CONSTRAINT … UNIQUE (…)`` builds its index under AccessExclusiveLock:
  ``CREATE UNIQUE INDEX CONCURRENTLY`` under the constraint's name, then ``ADD CONSTRAINT …
  UNIQUE USING INDEX``, which only renames it into the constraint;
- ``ADD CONSTRAINT … FOREIGN KEY`` and ``… CHECK`` read every row while they hold the table
  (ShareRowExclusiveLock on both tables of a key, AccessExclusiveLock for a check): ``NOT
  VALID`` first, then ``VALIDATE CONSTRAINT`` in a transaction of its own, which reads the
  rows under ShareUpdateExclusiveLock (it blocks no reads or writes);
- ``ALTER COLUMN … SET NOT NULL`` reads every row under AccessExclusiveLock: a ``CHECK (…
  IS NOT NULL) NOT VALID``, validated as above, lets it skip the scan (PostgreSQL 12+); the
  check is dropped after.

Each form is derived from the statement's text alone, so that a runbook's reader (and
``check_block``) can derive it again from the statement it replaces. Only the shapes
Django's PostgreSQL schema editor writes are recognised; anything else (a statement with
several actions, a type change that rewrites the table) has no online form and runs as
Django wrote it.

MySQL's and MariaDB's: the statement with the ``ALGORITHM`` (and ``LOCK=NONE``) the rehearsal
found the server takes for it, where that is INSTANT, NOCOPY or INPLACE with LOCK=NONE (no
copy of the table, writes go on). Without the clause the server picks its algorithm when it
runs, and falls back to a copy under a lock, silently, where this table needs one after all;
with it, the server refuses instead. Derived from the statement and what the rehearsal
observed (the step keeps it). A statement that only a copy will do stays as Django wrote it.

Pure: no connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from byhand.vendors.observing import own_clauses, with_algorithm
from byhand.vendors.statements import digest

__all__ = [
    "COPY",
    "ENGINE",
    "OnlineForm",
    "Part",
    "engine_alter",
    "mysql_online_form",
    "postgresql_online_form",
    "unquote",
]

#: The form of a statement that stays as Django wrote it, for apply to run through an engine
#: that copies the table while writes go on (the form names no engine: gh-ost could be one).
COPY = "copy"
#: The engine apply runs a COPY form through.
ENGINE = "pt-online-schema-change"

#: How a part runs: "with" the statements around it, in their transaction; in a transaction
#: of its "own", after the one before it has committed (so that what the transaction before
#: locked is free while it reads the rows); or "alone", outside any transaction (CONCURRENTLY).
Runs = Literal["with", "own", "alone"]

_NAME = r'"(?:[^"]|"")+"'
_INDEX = re.compile(rf"^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY )({_NAME}) ON ({_NAME})(?=[ (])(.*);$", re.DOTALL)
_CONSTRAINT = re.compile(rf"^ALTER TABLE ({_NAME}) ADD CONSTRAINT ({_NAME}) (FOREIGN KEY|CHECK) (\(.*);$", re.DOTALL)
_UNIQUE = re.compile(
    rf"^ALTER TABLE ({_NAME}) ADD CONSTRAINT ({_NAME}) UNIQUE( NULLS(?: NOT)? DISTINCT)? "
    rf"(\({_NAME}(?:, {_NAME})*\))( DEFERRABLE INITIALLY (?:DEFERRED|IMMEDIATE))?;$"
)
_NOT_NULL = re.compile(rf"^ALTER TABLE ({_NAME}) ALTER COLUMN ({_NAME}) SET NOT NULL;$")
#: Already what an online form writes, or beyond what the text alone can vouch for.
_NOT_PLAIN = re.compile(r"\bNOT VALID\b|\bUSING INDEX TABLESPACE\b|\bNO INHERIT\b|--|/\*|;.", re.DOTALL)


@dataclass(frozen=True)
class Part:
    """One statement of an online form, how it runs (see Runs), and whether it reads every
    row of its table (CONCURRENTLY and VALIDATE do, without blocking writes)."""

    sql: str
    runs: Runs
    scans: bool


@dataclass(frozen=True)
class OnlineForm:
    """The statements that replace one of Django's, on ``table``; ``kind`` names the form
    ("index", "unique", "foreign-key", "check", "not-null"), ``why`` says what Django's
    statement would hold and what the form holds instead."""

    kind: str
    table: str
    why: str
    parts: tuple[Part, ...]
    #: The rehearsal ran this very form (MySQL's probe): what it observed stays with the part.
    observed: bool = False


def unquote(name: str) -> str:
    """A quoted name (PostgreSQL's double quotes, MySQL's backticks) as the catalog holds it."""
    return name[1:-1].replace(name[0] * 2, name[0])


def postgresql_online_form(sql: str) -> OnlineForm | None:
    """The online form of Django's PostgreSQL statement ``sql`` (one statement, ending in
    ``;``), or None when it has none."""
    if _NOT_PLAIN.search(sql):
        return None
    for pattern, form in _FORMS:
        match = pattern.match(sql)
        if match:
            return form(sql, *match.groups())
    return None


#: What the probe may find that needs no copy of the table and lets writes go on.
_IN_PLACE = ("INSTANT", "NOCOPY", "INPLACE")


def mysql_online_form(sql: str, observed: Mapping[str, Any] | None) -> OnlineForm | None:
    """The online form of Django's MySQL/MariaDB statement ``sql``, given what the rehearsal
    ``observed`` when it ran it, or None when it has none."""
    seen = observed or {}
    algorithm, tables = seen.get("algorithm"), seen.get("tables") or []
    if algorithm == "COPY" and tables and not seen.get("uncopied"):
        return _copied_by_engine(sql, str(tables[0]))  # the table it alters (a key's is second)
    if algorithm not in _IN_PLACE or (algorithm != "INSTANT" and seen.get("lock") != "NONE") or not tables:
        return None
    if own_clauses(sql) or not sql.endswith(";"):
        return None  # a clause of its own (a RunSQL's) is what it asks for already
    written = with_algorithm(sql, str(algorithm), "NONE")
    if written is None:
        return None
    scans = bool(seen.get("scan"))
    if algorithm == "INSTANT":
        why = "the rehearsal found ALGORITHM=INSTANT: the server changes metadata only, reading no rows"
    else:
        done = "rebuilds the table" if seen.get("rewrites") else "works in place"
        why = f"the rehearsal found ALGORITHM={algorithm}, LOCK=NONE: the server {done} while writes go on"
    why += "; written in the statement, the server refuses it rather than copy the table under a lock"
    return OnlineForm("algorithm", str(tables[0]), why, (Part(f"{written};", "with", scans=scans),), observed=True)


#: An ALTER TABLE pt-online-schema-change can run: one statement, on the table it names.
_ALTER = re.compile(r"^ALTER TABLE (`(?:[^`]|``)+`) (.+);$", re.DOTALL)
#: What pt-online-schema-change cannot do on its copy (rename the table, change the key its
#: triggers find rows by, partitions), what it must not (a unique key: its copy skips the
#: rows that break it, where migrate fails), or a clause of Django's RunSQL beyond one ALTER.
_NOT_FOR_ENGINE = re.compile(
    r"\bRENAME\s+(?:TO|AS)\b|\bPRIMARY\s+KEY\b|\bUNIQUE\b|\bPARTITION|--|/\*|#|;", re.IGNORECASE
)


def engine_alter(sql: str) -> tuple[str, str] | None:
    """The table (unquoted) and the ``--alter`` text of ``sql`` for an engine that copies
    the table (pt-online-schema-change), or None when it is not one ALTER TABLE it can run."""
    match = _ALTER.match(sql)
    if match is None or own_clauses(sql) or _NOT_FOR_ENGINE.search(match.group(2)):
        return None
    return unquote(match.group(1)), match.group(2)


def _copied_by_engine(sql: str, table: str) -> OnlineForm | None:
    """A statement only a copy of the table will do: Django's ALTER as it is, which ``byhand
    apply`` runs through pt-online-schema-change (the ``mariadb`` client runs it plainly)."""
    found = engine_alter(sql)
    if found is None or found[0] != table:
        return None
    if re.search(rf"\bREFERENCES\s+`{re.escape(table.replace('`', '``'))}`", found[1], re.IGNORECASE):
        return None  # a key to itself: the copy's would point at the old table
    why = (
        "the rehearsal found only ALGORITHM=COPY, which blocks writes for the whole copy; byhand apply runs the "
        "statement through pt-online-schema-change (a copy kept in step by triggers, then an atomic rename), and "
        "records the migration only after that cut-over"
    )
    return OnlineForm(COPY, table, why, (Part(sql, "with", scans=True),), observed=True)


def _index(sql: str, unique: str | None, name: str, table: str, rest: str) -> OnlineForm:
    built = f"CREATE {unique or ''}INDEX CONCURRENTLY {name} ON {table}{rest};"
    why = (
        f"CREATE {unique or ''}INDEX holds ShareLock on {table} for the whole build, so writes wait; "
        "CONCURRENTLY builds it while writes go on"
    )
    return OnlineForm("index", unquote(table), why, (Part(built, "alone", scans=True),))


def _unique(sql: str, table: str, name: str, nulls: str | None, columns: str, deferrable: str | None) -> OnlineForm:
    why = (
        f"ADD CONSTRAINT … UNIQUE builds its index under AccessExclusiveLock on {table}, so reads and writes "
        "wait; the index is built CONCURRENTLY under the constraint's name, then becomes the constraint"
    )
    parts = (
        Part(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} {columns}{nulls or ''};", "alone", scans=True),
        Part(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}{deferrable or ''};",
            "with",
            scans=False,
        ),
    )
    return OnlineForm("unique", unquote(table), why, parts)


def _constraint(sql: str, table: str, name: str, kind: str, definition: str) -> OnlineForm:
    key = kind == "FOREIGN KEY"
    held = "ShareRowExclusiveLock on it and on the table it references" if key else "AccessExclusiveLock on it"
    why = (
        f"ADD CONSTRAINT … {kind} reads every row of {table} under {held}; NOT VALID adds it at once, and "
        "VALIDATE CONSTRAINT then reads the rows under ShareUpdateExclusiveLock, which blocks no reads or writes"
    )
    parts = (
        Part(f"ALTER TABLE {table} ADD CONSTRAINT {name} {kind} {definition} NOT VALID;", "with", scans=False),
        Part(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name};", "own", scans=True),
    )
    return OnlineForm("foreign-key" if key else "check", unquote(table), why, parts)


def _not_null(sql: str, table: str, column: str) -> OnlineForm:
    check = f'"byhand_nn_{digest(unquote(table) + chr(0) + unquote(column))[:16]}"'
    why = (
        f"SET NOT NULL reads every row of {table} under AccessExclusiveLock; a CHECK ({column} IS NOT NULL) "
        f"validated first under ShareUpdateExclusiveLock lets it skip the scan, and is dropped after (if the "
        f"migration is abandoned part-way, drop it: ALTER TABLE {table} DROP CONSTRAINT {check})"
    )
    parts = (
        # First what a failed or abandoned run left: the check of this name (nothing else).
        Part(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check};", "with", scans=False),
        Part(
            f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID;", "with", scans=False
        ),
        Part(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check};", "own", scans=True),
        Part(sql, "with", scans=False),
        Part(f"ALTER TABLE {table} DROP CONSTRAINT {check};", "with", scans=False),
    )
    return OnlineForm("not-null", unquote(table), why, parts)


#: Each shape of Django's statements with an online form, and the form made of its parts.
_FORMS: tuple[tuple[re.Pattern[str], Callable[..., OnlineForm]], ...] = (
    (_INDEX, _index),
    (_UNIQUE, _unique),
    (_CONSTRAINT, _constraint),
    (_NOT_NULL, _not_null),
)
