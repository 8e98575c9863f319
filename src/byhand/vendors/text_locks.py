"""What a statement's text says it locks, for ``byhand review``: the floor of a statement the
rehearsal did not observe (a runbook written by hand or by an older byhand), or whose
observations are not byhand's own (a re-signed runbook). Written in the shape of a step's
"observed" (byhand.runbook), so that the vendor's ReviewFacts.blocks reads it as it reads
what was observed.

PostgreSQL: the table lock each statement takes, as its documentation lists them. MariaDB
and MySQL: the ALGORITHM and LOCK clauses the statement asks for, which the server obeys or
refuses; without them the server chooses, and the text says nothing. Pure: no connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from byhand.vendors.observing import MODES, own_clauses
from byhand.vendors.statements import IDENTIFIER, QUOTED_TEXT, strip_comments

__all__ = ["describe_text_locks", "dropped_indexes", "mysql_text_locks", "postgresql_text_locks"]

_NAME = rf"{IDENTIFIER}(?:\s*\.\s*{IDENTIFIER})*"
_INDEX = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(CONCURRENTLY\b)?", re.IGNORECASE)
_DROP_INDEX = re.compile(
    rf"^\s*DROP\s+INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?((?:{_NAME})(?:\s*,\s*{_NAME})*)", re.IGNORECASE
)
_ALTER_TABLE = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({_NAME})\s*\*?\s+(.*)$", re.IGNORECASE | re.DOTALL
)
_LOCK = re.compile(
    rf"^\s*LOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?((?:{_NAME})\s*\*?(?:\s*,\s*(?:ONLY\s+)?{_NAME}\s*\*?)*)"
    r"(?:\s+IN\s+((?:ACCESS|ROW|SHARE|UPDATE|EXCLUSIVE|\s)+?)\s+MODE)?(?:\s+NOWAIT)?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DROP_OR_TRUNCATE = re.compile(r"^\s*(?:DROP\s+TABLE|TRUNCATE)\b", re.IGNORECASE)
#: Maintenance that names its tables itself: (mode, whether it rewrites them, whether it reads
#: every row). VACUUM FULL and CLUSTER rewrite under AccessExclusiveLock; REINDEX builds under
#: ShareLock (CONCURRENTLY: ShareUpdateExclusiveLock), a plain VACUUM reads under
#: ShareUpdateExclusiveLock; TRUNCATE empties the table (no TABLE keyword needed).
_MAINTENANCE = re.compile(
    rf"^\s*(?:(?P<full>VACUUM\s*(?:\([^)]*\bFULL\b[^)]*\)|(?:FULL\b|FREEZE\b|VERBOSE\b|ANALYZE\b|\s)*\bFULL\b)"
    rf"(?:\s+(?:FREEZE|VERBOSE|ANALYZE)\b)*)"
    rf"|(?P<vacuum>VACUUM(?:\s*\([^)]*\)|(?:\s+(?:FREEZE|VERBOSE|ANALYZE)\b)*))"
    rf"|(?P<cluster>CLUSTER(?:\s+VERBOSE)?)"
    rf"|(?P<reindex>REINDEX(?:\s*\([^)]*\))?\s+TABLE(?:\s+(?P<concurrently>CONCURRENTLY))?)"
    rf"|(?P<truncate>TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?))"
    rf"\s+(?P<names>{_NAME}(?:\s*\*?\s*,\s*(?:ONLY\s+)?{_NAME})*)",
    re.IGNORECASE,
)
_FOREIGN_KEY = re.compile(rf"^\s*ADD\s+(?:CONSTRAINT\s+{IDENTIFIER}\s+)?FOREIGN\s+KEY\b", re.IGNORECASE)
_SHARE_UPDATE = re.compile(
    rf"^\s*(?:VALIDATE\s+CONSTRAINT\b|ALTER\s+(?:COLUMN\s+)?{IDENTIFIER}\s+SET\s+STATISTICS\b)", re.IGNORECASE
)
_REFERENCES = re.compile(rf"\bREFERENCES\s+({_NAME})", re.IGNORECASE)


def _last(name: str) -> str:
    """A table's name as byhand names the tables a text names (its last part, unquoted)."""
    part: str = re.findall(IDENTIFIER, name)[-1]
    return part[1:-1].replace(part[0] * 2, part[0]) if part[0] in '"`' else part


def _names(names: str) -> list[str]:
    return [_last(name.strip().rstrip("*").strip()) for name in re.split(r"\s*,\s*", names) if name.strip()]


def _subcommands(text: str) -> list[str]:
    """An ALTER TABLE's actions: ``text`` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for position, character in enumerate(text):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    return [*parts, text[start:]]


def _locks(taken: Mapping[str, str]) -> dict[str, Any]:
    return {"tables": list(taken), "locks": [{"table": table, "mode": mode} for table, mode in taken.items()]}


def _take(taken: dict[str, str], table: str, mode: str) -> None:
    """The stronger of ``mode`` and what ``taken`` holds on ``table`` already."""
    if table not in taken or MODES.index(mode) > MODES.index(taken[table]):
        taken[table] = mode


def dropped_indexes(sql: str) -> list[str]:
    """The indexes a PostgreSQL DROP INDEX names (none for another statement)."""
    dropped = _DROP_INDEX.match(QUOTED_TEXT.sub("''", strip_comments(sql)))
    return _names(dropped.group(2)) if dropped else []


def postgresql_text_locks(sql: str, *, tables: list[str], index_tables: Mapping[str, str]) -> dict[str, Any] | None:
    """The table locks PostgreSQL takes for ``sql`` (whose tables, as its text names them, are
    ``tables``; a DROP INDEX's table is looked up in ``index_tables``); None where its text
    does not say."""
    text = QUOTED_TEXT.sub("''", strip_comments(sql))
    taken: dict[str, str] = {}
    index = _INDEX.match(text)
    if index and tables:
        _take(taken, tables[0], "ShareUpdateExclusiveLock" if index.group(1) else "ShareLock")
        return _locks(taken)
    dropped = _DROP_INDEX.match(text)
    if dropped:
        mode = "ShareUpdateExclusiveLock" if dropped.group(1) else "AccessExclusiveLock"
        for name in _names(dropped.group(2)):
            if name in index_tables:
                _take(taken, index_tables[name], mode)
        return _locks(taken) if taken else None
    altered = _ALTER_TABLE.match(text)
    if altered:
        table = _last(altered.group(1))
        for action in _subcommands(altered.group(2)):
            referenced = [_last(match.group(1)) for match in _REFERENCES.finditer(action)]
            if _FOREIGN_KEY.match(action):
                _take(taken, table, "ShareRowExclusiveLock")
            elif _SHARE_UPDATE.match(action):
                _take(taken, table, "ShareUpdateExclusiveLock")
            else:
                _take(taken, table, "AccessExclusiveLock")
            for other in referenced:
                _take(taken, other, "ShareRowExclusiveLock")
        return _locks(taken)
    locked = _LOCK.match(text)
    if locked:
        words = (locked.group(2) or "ACCESS EXCLUSIVE").split()
        mode = "".join(word.capitalize() for word in words) + "Lock"
        if mode not in MODES:
            return None
        for name in _names(re.sub(r"\bONLY\s+", "", locked.group(1), flags=re.IGNORECASE)):
            _take(taken, name, mode)
        return _locks(taken)
    maintenance = _MAINTENANCE.match(text)
    if maintenance:
        names = _names(maintenance.group("names"))
        kind = next(key for key in ("full", "vacuum", "cluster", "reindex", "truncate") if maintenance.group(key))
        if kind == "cluster":
            names = names[:1]  # CLUSTER t USING index
        mode = {"vacuum": "ShareUpdateExclusiveLock", "reindex": "ShareLock"}.get(kind, "AccessExclusiveLock")
        if kind == "reindex" and maintenance.group("concurrently"):
            mode = "ShareUpdateExclusiveLock"
        for name in names:
            _take(taken, name, mode)
        floor = _locks(taken)
        if kind in ("full", "cluster"):
            floor["rewrites"] = list(taken)
        floor["scan"] = kind != "truncate"
        return floor
    if _DROP_OR_TRUNCATE.match(text) and tables:
        for table in tables:
            _take(taken, table, "AccessExclusiveLock")
        return _locks(taken)
    return None


def mysql_text_locks(sql: str) -> dict[str, Any] | None:
    """The ALGORITHM and LOCK ``sql`` asks MariaDB/MySQL for ("algorithm", "lock" as the
    rehearsal writes them); None where it asks for neither. ALGORITHM=COPY without a LOCK
    takes SHARED (writes wait); a LOCK without an ALGORITHM leaves the algorithm DEFAULT."""
    own = own_clauses(sql)
    asked, shared = own.get("ALGORITHM", "DEFAULT"), own.get("LOCK", "DEFAULT")
    if asked == "COPY" and shared == "DEFAULT":
        shared = "SHARED"
    if asked == "DEFAULT" and shared == "DEFAULT":
        return None
    return {"algorithm": asked, "lock": None if shared == "DEFAULT" else shared}


def describe_text_locks(text: Mapping[str, Any]) -> str:
    """What a text floor says, for a reason: "takes ShareLock on t", "ALGORITHM=COPY, LOCK=SHARED"."""
    if "locks" in text:
        by_mode: dict[str, list[str]] = {}
        for lock in text["locks"]:
            by_mode.setdefault(lock["mode"], []).append(lock["table"])
        return "takes " + "; ".join(f"{mode} on {', '.join(tables)}" for mode, tables in by_mode.items())
    clauses = [] if text["algorithm"] == "DEFAULT" else [f"ALGORITHM={text['algorithm']}"]
    return ", ".join(clauses + ([f"LOCK={text['lock']}"] if text["lock"] else []))
