"""The runbook: one plain-SQL file that vendors' CLIs run as it is and byhand reads back.

Layout (every machine-readable line starts with ``-- byhand``)::

    -- byhand runbook v1
    -- byhand: {header as JSON}
    -- free comments (the plan)
    -- byhand: {"block": "migration", "migration": "shop.0002_x", "atomic": true, ...}
    BEGIN;                                     <- control statements, fixed per vendor
    --
    -- Add field x to book                     <- comments, as sqlmigrate prints them
    --
    -- byhand: {"step": "schema", "op": 0, "lines": 1}
    ALTER TABLE ...;                           <- exactly ``lines`` lines of SQL
    -- NOTE: the default ... read the target database ...
    -- byhand: {"read": "SELECT ...", "rows": [[42]], "default": "...", "op": 0}
    COMMIT;                                       (a query a default read, and what it gave)
    -- byhand checksum: sha256:...

A schema step's marker may say what the statement did when it was rehearsed on the scratch
copy, under "observed" (written by the planning side, read by ``byhand review``), with a
comment line saying the same above it::

    -- observed: AccessExclusiveLock on core_book; rewrites core_book
    -- byhand: {"step": "schema", "op": 0, "lines": 1, "observed": {...}}

    "tables":    tables that existed before the statement and that it acts on
    "locks":     PostgreSQL: [{"table", "mode"}], the lock modes it took on them (pg_locks
                 of the rehearsal session; locks its transaction already held are not its own)
    "algorithm": MariaDB/MySQL: the cheapest ALGORITHM the server accepted for it
                 ("INSTANT", "NOCOPY", "INPLACE", "COPY"); null when it is no ALTER/index DDL
    "lock":      MariaDB/MySQL: the weakest LOCK accepted with it ("NONE", "SHARED", "EXCLUSIVE")
    "rewrites":  tables whose storage it replaced (PostgreSQL: a relfilenode changed; MariaDB:
                 ALGORITHM=COPY; SQLite: Django's remake of the table)
    "scan":      whether it must read every row of a table (an index build, a constraint it
                 validates, SET NOT NULL, a rewrite): inferred from what the statement is

A runbook written with ``byhand sql --online`` has blocks marked ``"online": true`` (and
``"atomic": false``): some of their statements are parts of the online form of one of
Django's (byhand.vendors.online), each part's marker saying so, the first with the statement
it replaces, which Django's lines repeat as comments above it::

    -- byhand: {"step": "schema", "op": 0, "lines": 1, "online": {"form": "check", "part": 1, "of": 2,
    "replaces": "ALTER TABLE ..."}}     <- one line in the file

This module is pure data: no Django, no connection, no clock. Which control statements
a runbook may hold is its vendor's to say (Vendor.control_statements).
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from byhand.exceptions import RunbookChecksumMismatch, RunbookFormatError, UnsupportedVendor
from byhand.vendors import get_vendor
from byhand.vendors.observing import MODES

__all__ = [
    "Block",
    "Comment",
    "Control",
    "Item",
    "Read",
    "Runbook",
    "Step",
    "escape_comment",
    "has_control_character",
    "json_rows",
    "observed_comment",
    "parse_runbook",
    "sign_runbook",
    "terminate",
]

MAGIC = "-- byhand runbook v1"
MARKER = "-- byhand: "
CHECKSUM_PREFIX = "-- byhand checksum: sha256:"
_OBSERVED_PREFIX = "-- observed: "

#: What must never reach a runbook's comment raw: control characters (a line feed or carriage
#: return ends a ``--`` comment for psql, so what follows would run; the others move the
#: reviewer's cursor or colour the terminal) and Unicode's line and paragraph separators
#: (editors break the line there), and the bidirectional controls (U+061C, U+200E, U+200F,
#: U+202A-U+202E, U+2066-U+2069: embeddings, overrides, isolates and marks), which make a
#: terminal or a browser show text reordered ("Trojan Source": a statement reads as something
#: other than what runs). Tab is left: it ends nothing and keeps SQL's indentation.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

StepKind = Literal["schema", "record", "setup", "manual"]
BlockKind = Literal["setup", "migration", "replacements"]


def terminate(sql: str) -> str:
    """Return ``sql`` ended by a terminator that no trailing ``--`` comment can swallow.

    Django appends ``;`` to a statement that lacks one, which lands inside a
    trailing comment (``INSERT ... -- note;``). Here such a statement gets its
    ``;`` on a line of its own.
    """
    text = sql.rstrip()
    last_line = text.rsplit("\n", 1)[-1]
    if "--" in last_line:
        return text + "\n;"
    return text if text.endswith(";") else text + ";"


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds a character escape_comment would escape."""
    return _CONTROL.search(text) is not None


def _strength(mode: str) -> int:
    return MODES.index(mode) if mode in MODES else -1


def escape_comment(text: str) -> str:
    """``text`` with each control character written as a Python string literal writes it
    (``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``, ``\\u202e``): a comment line made of it stays one
    line, and one comment, shown in the order it is stored, whatever a migration, an app name
    or a description holds. Backslashes are left as they are, so escaping twice changes
    nothing (a comment is never read back as data).
    """
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def json_rows(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows a driver returned, as JSON values that compare equal whichever side read them
    (Django's connection while planning, byhand's own while applying): text, integers and
    booleans as they are; decimals, UUIDs and addresses as text; datetimes in UTC, ISO
    8601; bytes in hex; JSON documents and arrays as compact JSON text with sorted keys."""
    return [[_json_value(value) for value in row] for row in rows]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value.total_seconds())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)  # UUID, IP addresses, a driver's own types: as they print


@dataclass(frozen=True)
class Comment:
    """A comment line, kept so that the file reads like ``sqlmigrate``; rendered through
    escape_comment."""

    text: str  # the whole line, starting with "--"


@dataclass(frozen=True)
class Control:
    """A transaction or PRAGMA statement placed by the renderer (see CONTROL_STATEMENTS)."""

    sql: str


@dataclass(frozen=True)
class Step:
    """One statement to execute, or one manual step to perform by hand.

    ``op`` is the index of the migration's top-level operation it comes from
    (None for deferred SQL and bookkeeping). A manual step has no SQL; its
    ``callable`` is the dotted path of the Python function to run.
    """

    kind: StepKind
    sql: str = ""
    op: int | None = None
    callable: str | None = None
    #: What the rehearsal saw the statement do on the scratch copy (see OBSERVED): filled in
    #: when the statement has run there, which on the statement thread is after the step is made.
    observed: dict[str, Any] | None = None
    #: Part of the online form of one of Django's statements (``byhand sql --online``):
    #: {"form", "part", "of"}, and on the first part "replaces", Django's statement.
    online: dict[str, Any] | None = None

    def marker(self) -> dict[str, Any]:
        data: dict[str, Any] = {"step": self.kind, "op": self.op}
        if self.kind == "manual":
            data["callable"] = self.callable
        else:
            data["lines"] = self.sql.count("\n") + 1
        if self.observed:
            data["observed"] = self.observed
        if self.online:
            data["online"] = self.online
        return data


def observed_comment(observed: dict[str, Any]) -> str:
    """One comment line saying what a statement did on the scratch copy, e.g.
    ``-- observed: AccessExclusiveLock on core_book; rewrites core_book; reads every row``
    (per table, the strongest of the lock modes it took)."""
    parts: list[str] = []
    for key, suffix in (("locks", ""), ("held", " (held already)")):
        strongest: dict[str, str] = {}
        for lock in observed.get(key) or []:
            table, mode = str(lock.get("table")), str(lock.get("mode"))
            if _strength(mode) >= _strength(strongest.get(table, "")):
                strongest[table] = mode
        by_mode: dict[str, list[str]] = {}
        for table, mode in strongest.items():
            by_mode.setdefault(mode, []).append(table)
        parts.extend(f"{mode} on {', '.join(tables)}{suffix}" for mode, tables in by_mode.items())
    if observed.get("algorithm"):
        tables = ", ".join(observed.get("tables") or [])
        algorithm = f"ALGORITHM={observed['algorithm']}, LOCK={observed.get('lock')}"
        parts.append(algorithm + (f" on {tables}" if tables else ""))
    if observed.get("rewrites"):
        parts.append(f"rewrites {', '.join(observed['rewrites'])}")
    if observed.get("scan"):
        parts.append("reads every row")
    if observed.get("uncopied"):
        parts.append(f"pt-online-schema-change cannot copy it: {observed['uncopied']}")
    if not parts:  # PostgreSQL's locks are read; elsewhere what it did is all there is to say
        parts.append("no new lock on a table that existed before it" if "locks" in observed else "nothing heavy")
    return _OBSERVED_PREFIX + "; ".join(parts)


@dataclass(frozen=True)
class Read:
    """A query a field's callable default ran on the target database when the runbook was
    made, with the rows it returned then (``rows``: JSON values, see
    byhand.vendors.statements.json_rows): apply runs it again at preflight, read-only, and
    refuses the run if it returns anything else, since the value fixed in the SQL came from
    those rows. ``default`` names the default (as the NOTE above it does); ``op`` is the
    operation whose statements hold the value."""

    query: str  # exactly as executed, its parameters bound
    rows: list[list[Any]]
    default: str
    op: int | None = None

    def marker(self) -> dict[str, Any]:
        return {"read": self.query, "rows": self.rows, "default": self.default, "op": self.op}

    @classmethod
    def from_marker(cls, data: dict[str, Any], line: int) -> Read:
        query, rows, default, op = data.get("read"), data.get("rows"), data.get("default"), data.get("op")
        if not isinstance(query, str) or not isinstance(default, str) or not (op is None or isinstance(op, int)):
            raise RunbookFormatError(f"line {line}: a read marker needs a query, the default it is for and an op")
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise RunbookFormatError(f"line {line}: a read marker's rows must be a list of lists")
        return cls(query=query, rows=rows, default=default, op=op)


Item = Comment | Control | Step | Read


@dataclass
class Block:
    """One migration (or the setup / squash bookkeeping) with everything it runs."""

    kind: BlockKind
    atomic: bool
    migration: str | None = None  # "app.name"
    requires: list[str] = field(default_factory=list)
    records: list[list[str]] = field(default_factory=list)  # [app, name] rows inserted
    deletes: list[list[str]] = field(default_factory=list)  # [app, name] rows deleted
    #: Backwards only: the migrations that depend on this one (they must be unapplied first).
    required_by: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    #: Some of its statements are in their online forms (``byhand sql --online``): it runs as
    #: the transactions its BEGIN/COMMIT pairs show, each statement outside them on its own.
    online: bool = False

    @property
    def steps(self) -> list[Step]:
        return [item for item in self.items if isinstance(item, Step)]

    @property
    def manual_steps(self) -> list[Step]:
        return [step for step in self.steps if step.kind == "manual"]

    @property
    def reads(self) -> list[Read]:
        """What its field defaults read from the target when the runbook was made."""
        return [item for item in self.items if isinstance(item, Read)]

    def marker(self) -> dict[str, Any]:
        data: dict[str, Any] = {"block": self.kind}
        if self.migration is not None:
            data["migration"] = self.migration
        data["atomic"] = self.atomic
        if self.kind == "migration":
            data["requires"] = self.requires
        data["records"] = self.records
        data["deletes"] = self.deletes
        if self.deletes and self.kind == "migration":
            data["required_by"] = self.required_by
        if self.online:
            data["online"] = True
        return data

    @classmethod
    def from_marker(cls, data: dict[str, Any]) -> Block:
        kind = data.get("block")
        if kind not in ("setup", "migration", "replacements"):
            raise RunbookFormatError(f"unknown block kind {kind!r}")
        return cls(
            kind=kind,
            atomic=bool(data["atomic"]),
            migration=data.get("migration"),
            requires=list(data.get("requires", [])),
            records=[list(row) for row in data.get("records", [])],
            deletes=[list(row) for row in data.get("deletes", [])],
            required_by=list(data.get("required_by", [])),
            online=data.get("online") is True,
        )


@dataclass
class Runbook:
    """A whole runbook: header facts, free comment lines, and blocks in order."""

    header: dict[str, Any]
    preamble: list[Item] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    @property
    def direction(self) -> str:
        return str(self.header["direction"])

    @property
    def vendor(self) -> str:
        return str(self.header["vendor"])

    @property
    def migrations(self) -> list[Block]:
        return [block for block in self.blocks if block.kind == "migration"]

    def replaced(self) -> list[str]:
        """The checksums this runbook's re-signatures replaced, newest first: runs of those
        runbooks count for resuming this one."""
        return [str(signature.get("was")) for signature in reversed(self.header.get("signed", []))]

    def body(self) -> str:
        lines = [MAGIC, MARKER + _dump(self.header)]
        lines.extend(_render_item(item) for item in self.preamble)
        for block in self.blocks:
            lines.append("")
            lines.append(MARKER + _dump(block.marker()))
            lines.extend(_render_item(item) for item in block.items)
        lines.append("")
        return "\n".join(lines) + "\n"

    def checksum(self) -> str:
        return _sha256(self.body())

    def render(self) -> str:
        body = self.body()
        return f"{body}{CHECKSUM_PREFIX}{_sha256(body)}\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def _render_item(item: Item) -> str:
    if isinstance(item, Comment):
        return escape_comment(item.text)
    if isinstance(item, Control):
        return item.sql
    if isinstance(item, Read):  # ASCII: whatever the data holds, the line stays one comment line
        return MARKER + json.dumps(item.marker(), ensure_ascii=True, separators=(", ", ": "))
    return MARKER + _dump(item.marker()) + ("" if item.kind == "manual" else "\n" + item.sql)


def parse_runbook(text: str, *, verify_checksum: bool = True) -> Runbook:
    """Read a runbook back; refuse anything the renderer would not have written."""
    body, checksum = _split_checksum(text)
    actual = _sha256(body)
    if verify_checksum and checksum != actual:
        raise RunbookChecksumMismatch(expected=checksum, actual=actual)
    lines = body.split("\n")
    if len(lines) < 2 or lines[0] != MAGIC or not lines[1].startswith(MARKER):
        raise RunbookFormatError("it does not start with '-- byhand runbook v1' and its header")
    runbook = Runbook(header=_load(lines[1], 2))
    controls = _control_statements(runbook.header)
    target: list[Item] = runbook.preamble
    index = 2
    while index < len(lines):
        line = lines[index]
        index += 1
        if line == "":
            continue
        if line.startswith(MARKER):
            data = _load(line, index)
            if "block" in data:
                block = Block.from_marker(data)
                runbook.blocks.append(block)
                target = block.items
                continue
            if "read" in data:
                if not runbook.blocks:
                    raise RunbookFormatError(f"line {index}: a read marker outside any block")
                target.append(Read.from_marker(data, index))
                continue
            step, index = _read_step(data, lines, index)
            if not runbook.blocks:
                raise RunbookFormatError(f"line {index}: a step outside any block")
            target.append(step)
        elif line.startswith("--"):
            if has_control_character(line):
                raise RunbookFormatError(
                    f"line {index}: a comment holds a control character ({escape_comment(line)[:60]!r}), "
                    "which byhand never writes (it escapes them); the file was edited by hand"
                )
            target.append(Comment(line))
        elif line in controls:
            target.append(Control(line))
        else:
            raise RunbookFormatError(
                f"line {index}: SQL outside a step ({line[:60]!r}); "
                "the file was edited by hand or is not a byhand runbook"
            )
    if verify_checksum and runbook.body() != body:
        raise RunbookFormatError("its layout differs from what byhand writes (blank lines or spacing)")
    from byhand.markers import check_block  # it reads these classes

    vendor = get_vendor(runbook.vendor)
    for block in runbook.blocks:
        check_block(block, vendor)
    return runbook


def _control_statements(header: dict[str, Any]) -> frozenset[str]:
    """The only statements a runbook may hold outside steps: those its vendor's renderer
    places (transaction control; SQLite's foreign-key PRAGMAs)."""
    try:
        return get_vendor(str(header.get("vendor"))).control_statements()
    except UnsupportedVendor:
        raise RunbookFormatError(f"its header names no vendor byhand knows ({header.get('vendor')!r})") from None


def _split_checksum(text: str) -> tuple[str, str]:
    stripped = text.rstrip("\n")
    head, _, last = stripped.rpartition("\n")
    if not last.startswith(CHECKSUM_PREFIX):
        raise RunbookFormatError("its last line is not '-- byhand checksum: sha256:…' (truncated?)")
    return head + "\n", last[len(CHECKSUM_PREFIX) :].strip()


def _load(line: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line[len(MARKER) :])
    except json.JSONDecodeError as exc:
        raise RunbookFormatError(f"line {number}: unreadable byhand marker ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RunbookFormatError(f"line {number}: a byhand marker must hold a JSON object")
    return data


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _locks(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(lock, dict) and isinstance(lock.get("table"), str) and isinstance(lock.get("mode"), str)
        for lock in value
    )


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


#: What each key of a step's "observed" holds, as byhand writes it.
_OBSERVED_SHAPES: dict[str, Callable[[Any], bool]] = {
    "tables": _names,
    "rewrites": _names,
    "locks": _locks,
    "held": _locks,
    "algorithm": _text,
    "lock": _text,
    "scan": _flag,
    "uncopied": _text,  # why pt-online-schema-change cannot copy its table (MySQL/MariaDB)
}


def _check_observed(observed: Any, line: int) -> None:
    """RunbookFormatError unless a step's "observed" has the shape byhand writes (its
    readers rely on it; keys they do not know are left for a later byhand)."""
    if not isinstance(observed, dict):
        raise RunbookFormatError(f'line {line}: a step\'s "observed" must be a JSON object')
    wrong = [key for key, fits in _OBSERVED_SHAPES.items() if key in observed and not fits(observed[key])]
    if wrong:
        raise RunbookFormatError(
            f'line {line}: a step\'s "observed" holds under {", ".join(wrong)} what byhand never writes there '
            '(lists of names; locks as {"table", "mode"}; "scan" true or false): the file was edited by hand'
        )


def _read_step(data: dict[str, Any], lines: list[str], index: int) -> tuple[Step, int]:
    kind = data.get("step")
    op = data.get("op")
    observed = data.get("observed")
    if observed is not None:
        _check_observed(observed, index)
    online = data.get("online")
    if online is not None:
        _check_online(online, index)
    if kind == "manual":
        return Step(kind="manual", op=op, callable=data.get("callable")), index
    if kind not in ("schema", "record", "setup"):
        raise RunbookFormatError(f"line {index}: unknown step kind {kind!r}")
    count = data.get("lines")
    if not isinstance(count, int) or count < 1 or index + count > len(lines):
        raise RunbookFormatError(f"line {index}: step claims {count!r} lines of SQL")
    sql = "\n".join(lines[index : index + count])
    return Step(kind=kind, sql=sql, op=op, observed=observed, online=online), index + count


def _check_online(online: Any, line: int) -> None:
    """RunbookFormatError unless a step's "online" has the shape byhand writes."""
    fits = (
        isinstance(online, dict)
        and isinstance(online.get("form"), str)
        and isinstance(online.get("part"), int)
        and isinstance(online.get("of"), int)
        and 1 <= online["part"] <= online["of"]
        and isinstance(online.get("replaces"), str) == (online["part"] == 1)
    )
    if not fits:
        raise RunbookFormatError(
            f'line {line}: a step\'s "online" must hold its "form", "part" and "of", and on part 1 the statement '
            'it "replaces": the file was edited by hand'
        )


def sign_runbook(text: str, *, by: str, at: str) -> tuple[str, str, str]:
    """Re-sign a runbook after a reviewed edit: (new text, previous checksum, new checksum).

    The structure must still be one byhand writes (every statement inside a step
    whose ``lines`` count is right); the header keeps who signed, when, and the
    checksum it replaced, so that apply can journal it.
    """
    body, claimed = _split_checksum(text)
    runbook = parse_runbook(text, verify_checksum=False)
    if claimed == _sha256(body) and runbook.body() == body:
        return text, claimed, claimed
    runbook.header.setdefault("signed", []).append({"by": by, "at": at, "was": claimed})
    return runbook.render(), claimed, runbook.checksum()
