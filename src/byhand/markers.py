"""What a runbook's block markers claim, checked against the SQL they describe.

apply decides from the markers what to skip, what to refuse and what runs in one
transaction (a block's "records" and "deletes", "atomic", its manual steps), while a
reviewer reads the SQL. A re-signed edit, or a forged checksum, must not make them say
different things: the rows a block's INSERTs and DELETE write are its "records" and
"deletes", BEGIN/COMMIT stand around it exactly when it is atomic on a vendor whose DDL
rolls back, and each manual step names the function its comment names.

A read marker (a query a field's default ran on the target, and the rows it gave) is run
by apply at preflight, --dry-run included, before anything else: it must be one SELECT
(no second statement, no comment that MySQL would execute, no dollar quoting) in a
migration block, for an operation of that block that has SQL. That, and the read-only
transaction apply runs it in, leave an edit of it no power an edit of the SQL lacks: it can
make apply check something else, or nothing (an edit of the DEFAULT value does as much),
not write. What the rows say cannot be checked against the SQL (what a default makes of
them is the project's code): a reviewer reads the NOTE, the rows and the DEFAULT together.

Pure: no Django, no connection.
"""

from __future__ import annotations

import re
from typing import NoReturn

from byhand.exceptions import RunbookFormatError
from byhand.runbook import Block, Comment, Control, Read, Step
from byhand.vendors.base import Vendor
from byhand.vendors.online import Part

__all__ = ["check_block", "is_one_select", "literals"]

_STRING = re.compile(r"'((?:[^'\\]|''|\\.)*)'", re.DOTALL)
_BACKSLASH = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "Z": "\x1a"}
#: One app's rows in Django's DELETE FROM django_migrations: "app" = '…' AND "name" IN ('…', …).
_DELETED = re.compile(r"=\s*('(?:[^'\\]|''|\\.)*')\s+AND\s+\S+\s+IN\s+\(((?:\s*'(?:[^'\\]|''|\\.)*'\s*,?)+)\)")
#: Quoted text in a read marker's query: strings (E'' strings with backslash escapes) and names.
_QUOTED = re.compile(r"[Ee]'(?:[^'\\]|''|\\.)*'|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)
_QUOTED_BACKSLASH = re.compile(r"'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\"\"|\\.)*\"|`(?:[^`]|``)*`", re.DOTALL)
#: What must not be left in a read's query outside quotes: a second statement, comments
#: (MySQL runs /*! ... */), dollar quoting, a quote left open; and what a SELECT may do
#: besides reading: INTO (a file, variables, a new table), row locks (FOR UPDATE/SHARE,
#: LOCK IN SHARE MODE). Django's ORM writes none of these for a default's query.
_NOT_IN_A_READ = re.compile(
    r";|--|/\*|(?<![\w$])\$|'|\"|`|" + r"\bINTO\b|\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b|\bLOCK\s+IN\b",
    re.IGNORECASE,
)
_NOT_IN_A_MYSQL_READ = re.compile(
    r";|--|/\*|#|'|\"|`|" + r"\bINTO\b|\bFOR\s+(?:UPDATE|SHARE)\b|\bLOCK\s+IN\b", re.IGNORECASE
)
_MANUAL = re.compile(r"^-- MANUAL STEP: run (.+?) \((?:forwards|backwards)\) on a host")


def literals(sql: str, *, backslash_escapes: bool) -> list[str]:
    """The string literals of ``sql``, in order, unquoted as the vendor reads them."""
    values = []
    for match in _STRING.finditer(sql):
        value = match.group(1).replace("''", "'")
        if backslash_escapes:
            value = _BACKSLASH.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)
        values.append(value)
    return values


def check_block(block: Block, vendor: Vendor) -> None:
    """RunbookFormatError unless ``block``'s markers agree with its SQL."""
    name = block.migration or f"({block.kind})"
    escapes = vendor.backslash_escapes
    inserted = [_inserted(step.sql, escapes) for step in block.steps if step.kind == "record" and _is(step, "INSERT")]
    deleted = [
        row
        for step in block.steps
        if step.kind == "record" and _is(step, "DELETE")
        for row in _deleted(step.sql, escapes)
    ]
    if [list(row) for row in inserted] != block.records:
        _disagree(name, f'"records" says {_rows(block.records)}', f"its INSERTs record {_rows(inserted)}")
    if sorted(list(row) for row in deleted) != sorted(block.deletes):
        _disagree(name, f'"deletes" says {_rows(block.deletes)}', f"its DELETE removes {_rows(deleted)}")
    if block.kind == "migration":
        own = [list(str(block.migration).partition(".")[::2])]
        if own[0] not in block.records + block.deletes:
            _disagree(
                name,
                "its name is not among the rows it records or deletes",
                f"they are {_rows(block.records + block.deletes)}",
            )
    begun = _transactions(name, block)
    wrapped = begun > 0
    if block.online:
        _check_online(name, block, vendor)
    elif any(step.online for step in block.steps):
        _disagree(name, "a step says it is part of an online form", 'the block\'s marker does not say "online"')
    elif wrapped != (block.atomic and vendor.transactional_ddl) or begun > 1:
        atomic = '"atomic": true' if block.atomic else '"atomic": false'
        _disagree(
            name,
            f"its marker says {atomic}",
            "BEGIN/COMMIT around it say otherwise" if wrapped else "no BEGIN/COMMIT stands around it",
        )
    _check_manual_steps(name, block)
    for read in block.reads:
        _check_read(name, block, read, vendor)


def _transactions(name: str, block: Block) -> int:
    """How many BEGIN … COMMIT the block holds; RunbookFormatError unless each BEGIN has its
    COMMIT, with nothing nested (psql would roll back a transaction left open at the end,
    which apply would commit)."""
    begun, open_transaction = 0, False
    for item in block.items:
        if isinstance(item, Control) and item.sql in ("BEGIN;", "COMMIT;"):
            if (item.sql == "BEGIN;") == open_transaction:
                _disagree(name, f"a {item.sql} stands where it does", "BEGIN and COMMIT must pair, unnested")
            open_transaction = not open_transaction
            begun += item.sql == "BEGIN;"
    if open_transaction:
        _disagree(name, "a BEGIN; has no COMMIT;", "BEGIN and COMMIT must pair, unnested")
    return begun


def _check_online(name: str, block: Block, vendor: Vendor) -> None:
    """An online block: not atomic, and each form's parts exactly what the vendor derives
    from the statement they replace, the parts that must not share a transaction outside one."""
    if block.atomic:
        _disagree(name, 'its marker says "online" and "atomic": true', "an online block runs as several transactions")
    expected: list[Part] = []
    replaces = ""
    in_transaction = False
    for item in block.items:
        if isinstance(item, Control):
            in_transaction = item.sql == "BEGIN;" or (in_transaction and item.sql != "COMMIT;")
            continue
        if not isinstance(item, Step) or item.online is None:
            if expected and isinstance(item, Step):
                _disagree(name, f"the online form of {replaces[:80]!r} is cut short", f"{item.sql[:80]!r} follows")
            continue
        if item.online["part"] == 1:
            if expected:
                _disagree(name, f"the online form of {replaces[:80]!r} is cut short", "another form starts")
            replaces = str(item.online["replaces"])
            form = vendor.online_form(replaces, item.observed)
            expected = list(form.parts) if form is not None else []
            if form is None or (form.kind, len(form.parts)) != (item.online["form"], item.online["of"]):
                _disagree(name, f"a step replaces {replaces[:80]!r}", "byhand writes no such online form for it")
        part = expected.pop(0) if expected else None
        if part is None or part.sql != item.sql:
            _disagree(name, f"a step is part of the online form of {replaces[:80]!r}", f"it runs {item.sql[:80]!r}")
        if part.runs != "with" and in_transaction:
            _disagree(name, f"{item.sql[:80]!r} is part of an online form", "it stands inside BEGIN/COMMIT")
    if expected:
        _disagree(name, f"the online form of {replaces[:80]!r} is cut short", "the block ends")


def _check_manual_steps(name: str, block: Block) -> None:
    named = None
    for item in block.items:
        if isinstance(item, Comment):
            match = _MANUAL.match(item.text)
            named = match.group(1) if match else named
        elif isinstance(item, Step) and item.kind == "manual":
            if item.callable != named:
                _disagree(
                    name, f"manual step {item.op} names {item.callable}", f"its comment says {named or 'nothing'}"
                )
            named = None


def is_one_select(query: str, vendor: Vendor) -> bool:
    """Whether ``query`` is one SELECT statement and nothing else, as a read marker must be."""
    if vendor.backslash_escapes:
        bare = _QUOTED_BACKSLASH.sub(" ", query)
        return bool(re.match(r"\s*SELECT\b", bare, re.IGNORECASE)) and not _NOT_IN_A_MYSQL_READ.search(bare)
    bare = _QUOTED.sub(" ", query)
    return bool(re.match(r"\s*SELECT\b", bare, re.IGNORECASE)) and not _NOT_IN_A_READ.search(bare)


def _check_read(name: str, block: Block, read: Read, vendor: Vendor) -> None:
    if not is_one_select(read.query, vendor):
        _disagree(name, f"a read marker holds {read.query[:80]!r}", "apply runs only one SELECT there")
    ops = {step.op for step in block.steps if step.kind == "schema"}
    if block.kind != "migration" or read.op not in ops:
        _disagree(name, f"a read marker is for operation {read.op}", "no statement of that operation is in the block")


def _is(step: Step, verb: str) -> bool:
    return step.sql.lstrip().upper().startswith(verb)


def _inserted(sql: str, escapes: bool) -> tuple[str, ...]:
    values = literals(sql, backslash_escapes=escapes)
    return tuple(values[:2])


def _deleted(sql: str, escapes: bool) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for match in _DELETED.finditer(sql):
        (app,) = literals(match.group(1), backslash_escapes=escapes)
        rows.extend((app, name) for name in literals(match.group(2), backslash_escapes=escapes))
    return rows


def _rows(rows: list[list[str]] | list[tuple[str, ...]] | list[tuple[str, str]]) -> str:
    return ", ".join(".".join(row) for row in rows) or "nothing"


def _disagree(name: str, claim: str, fact: str) -> NoReturn:
    raise RunbookFormatError(
        f"block {name}: {claim}, but {fact}. apply decides from a block's marker what to skip, refuse and run as "
        "one transaction, so it must say what the SQL does: undo the edit, or generate the runbook again"
    )
