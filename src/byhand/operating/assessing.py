"""How risky one runbook statement is on a database of a given size, and what its text says
when the rehearsal did not observe it. Pure: no connection, no vendor name.

A statement is *heavy* when it rewrites a table or reads every row of one (MariaDB's
ALGORITHM=COPY does both). Risk:

- high: heavy, blocking writes (or reads and writes) on a big table;
- medium: the same on a smaller table that is not empty (or whose row count is unknown);
  heavy and online (blocking nothing) on a big table; heavy on a table of unknown size, or
  with locks not observed; observed, but what its locks block unknown (a lock mode byhand
  does not know); an AccessExclusiveLock on a big table, however brief (apply's lock
  timeout bounds the wait for it, not how long it is held);
- low: the rest, and whatever acts only on tables created earlier in the same runbook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from byhand.vendors.observing import reads_every_row
from byhand.vendors.reviewing import Blocks, TableSize
from byhand.vendors.statements import tables_named_in

__all__ = [
    "LEVELS",
    "Judgement",
    "RiskLevel",
    "Thresholds",
    "at_least",
    "created_by",
    "format_bytes",
    "is_row_write",
    "judge",
    "parse_size",
    "scans",
]

RiskLevel = Literal["low", "medium", "high"]
LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")


def at_least(level: RiskLevel, floor: RiskLevel) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


@dataclass(frozen=True)
class Thresholds:
    """When a table is big: this many rows, or this many bytes (table, indexes, TOAST)."""

    big_rows: int = 100_000
    big_bytes: int = 100 * 1024 * 1024

    def is_big(self, size: TableSize) -> bool:
        return (size.rows is not None and size.rows >= self.big_rows) or (
            size.bytes is not None and size.bytes >= self.big_bytes
        )

    def describe(self) -> str:
        return f"big table: at least {self.big_rows:,} rows or {format_bytes(self.big_bytes)}"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(text: str) -> int:
    """'100MB', '1.5GB', '512kB', '4096' (bytes); units are powers of 1024, as pg_size_pretty's."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 100MB, 2GB, 512kB)")
    return round(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def format_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover -- the loop returns at GB


def _size_text(size: TableSize | None) -> str:
    if size is None:
        return "size unknown: not on this database"
    rows = "? rows" if size.rows is None else f"{size.rows:,} rows"
    return f"{rows}, {format_bytes(size.bytes)}"


_Q = r"[`\"]?(\w+)[`\"]?"
_CREATE_TABLE = re.compile(rf"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_Q}", re.IGNORECASE)
_RENAME = re.compile(rf"^\s*(?:ALTER\s+TABLE\s+{_Q}\s+RENAME\s+TO\s+{_Q}|RENAME\s+TABLE\s+{_Q}\s+TO\s+{_Q})", re.I)
_ROW_WRITE = re.compile(r"^\s*(UPDATE|DELETE)\b", re.IGNORECASE)
#: A PostgreSQL type change: whether it rewrites the table is known only where it was observed.
_TYPE_CHANGE = re.compile(r"\bALTER\s+(?:COLUMN\s+)?\S+\s+(?:SET\s+DATA\s+)?TYPE\b", re.IGNORECASE)


def is_row_write(sql: str) -> bool:
    """UPDATE or DELETE: it locks the rows it changes until its transaction ends."""
    return _ROW_WRITE.match(sql) is not None


def scans(sql: str) -> bool:
    """What the text says: it must read every row of a table (what the rehearsal infers,
    byhand.vendors.observing.reads_every_row, and a type change, which it observes)."""
    return reads_every_row(sql) or _TYPE_CHANGE.search(sql) is not None


def created_by(sql: str, created: set[str]) -> None:
    """Update ``created`` (the tables made earlier in the runbook, still empty) with what
    ``sql`` does: CREATE TABLE adds one, a rename carries it, INSERT … SELECT fills it
    (unless every table it reads was made earlier in the runbook too)."""
    match = _CREATE_TABLE.match(sql)
    if match:
        created.add(match.group(1))
        return
    renamed = _RENAME.match(sql)
    if renamed:
        old, new = (renamed.group(1), renamed.group(2)) if renamed.group(1) else (renamed.group(3), renamed.group(4))
        if old in created:
            created.discard(old)
            created.add(new)
        return
    insert = re.match(rf"^\s*INSERT\s+INTO\s+{_Q}.*\bSELECT\b", sql, re.IGNORECASE | re.DOTALL)
    if insert and not set(tables_named_in(sql)) - {insert.group(1)} <= created:
        created.discard(insert.group(1))  # filled from a table that was there: no longer empty


def _heavy(blocks: Blocks | None, *, big: bool, filled: bool, unknown: bool, sized: str) -> tuple[RiskLevel, list[str]]:
    """The risk of heavy work by what it blocks and the size of what it works through
    (``filled``: not empty, or its row count unknown; ``unknown``: its size unknown)."""
    if blocks is None:
        return "medium", ["what it blocks is unknown"]
    blocking = blocks in ("writes", "reads and writes")
    if blocking and big:
        return "high", [f"blocks {blocks} on a big table: {sized}"]
    if blocking and (filled or unknown):
        return "medium", [f"blocks {blocks} while it works: {sized}"]
    if big:
        return "medium", [f"online, but works through a big table: {sized}"]
    if unknown:
        return "medium", []  # the caller says which size is unknown
    return "low", [f"online, on a small table: {sized}" if filled else f"on empty tables: {sized}"]


@dataclass(frozen=True)
class Judgement:
    risk: RiskLevel
    reasons: list[str]


def judge(
    *,
    tables: Iterable[str],
    new: set[str],
    sizes: Mapping[str, TableSize],
    blocks: Blocks | None,
    heavy: list[str],
    exclusive: Iterable[str],
    thresholds: Thresholds,
    observed: bool = True,
    unclear: bool = False,
    worked: Iterable[str] | None = None,
) -> Judgement:
    """The risk of a statement on ``tables`` (those in ``new`` made earlier in the runbook),
    whose ``heavy`` work is described (empty: it rewrites and scans nothing), which blocks
    ``blocks`` (None: unknown), and holds an AccessExclusiveLock on ``exclusive``; not
    ``observed``, what it rewrites is unknown, so on a big table or one of unknown size it
    is not called low; ``unclear``: observed, but it holds a lock whose mode byhand does not
    know, so ``blocks`` is only a floor and it is not called low. ``worked``: the tables whose
    size makes the heavy work long (those it rewrites or reads through; by default all), where
    the others are only locked."""
    old = [table for table in dict.fromkeys(tables) if table not in new]
    if not old:
        return Judgement("low", ["acts only on tables created earlier in this runbook (new, empty)"] if new else [])
    work = old if worked is None else [t for t in dict.fromkeys(worked) if t not in new]
    reasons = list(heavy)
    if heavy and not work:
        reasons.append("it works through tables created earlier in this runbook (new, empty)")
        heavy = []
    big = [t for t in work if t in sizes and thresholds.is_big(sizes[t])]
    unknown = [t for t in work if t not in sizes or (sizes[t].rows is None and sizes[t].bytes is None)]
    uncounted = [t for t in work if t in sizes and sizes[t].rows is None and t not in big and t not in unknown]
    filled = [t for t in work if t in sizes and (sizes[t].rows or 0) > 0]
    sized = ", ".join(f"{t} ({_size_text(sizes.get(t))})" for t in work or old)
    risk: RiskLevel = "low"
    if heavy:
        risk, why = _heavy(blocks, big=bool(big), filled=bool(filled or uncounted), unknown=bool(unknown), sized=sized)
        reasons += why
    if heavy and unknown:
        reasons.append(f"size unknown: {', '.join(unknown)}")
    if heavy and uncounted and risk == "medium" and not big:
        reasons.append(f"row count unknown (never analysed), taken as not empty: {', '.join(uncounted)}")
    big_anywhere = [t for t in old if t in sizes and thresholds.is_big(sizes[t])]
    held = [t for t in dict.fromkeys(exclusive) if t in big_anywhere]
    if held and risk == "low":
        reasons.append(
            f"AccessExclusiveLock on a big table ({', '.join(held)}): apply's lock timeout bounds the wait for "
            "it, not how long it is held"
        )
        risk = "medium"
    everything = ", ".join(f"{t} ({_size_text(sizes.get(t))})" for t in old)
    if not heavy and risk == "low" and not observed and blocks is None and big_anywhere:
        named = ", ".join(big_anywhere)
        reasons.append(f"not observed: whether it rewrites or locks {named} is unknown ({everything})")
        risk = "medium"
    elif unclear and risk == "low":
        reasons.append(f"what it blocks is unknown: {everything}")
        risk = "medium"
    elif not heavy and risk == "low" and not reasons:
        reasons.append(f"neither rewrites nor reads every row{'' if observed else ' (from its text)'} ({everything})")
    return Judgement(risk, reasons)
