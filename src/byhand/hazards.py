"""Django's own hazards, as a runbook shows them: a primary key's type change (the BigAutoField
upgrade Django 6.0's DEFAULT_AUTO_FIELD brings) and the foreign keys that follow it, a foreign
key dropped and created again (AlterField on a ForeignKey), and the related tables RenameModel
alters. Pure: the planning side writes the key-change note, review reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from byhand.runbook import Block, Comment, Runbook, Step
from byhand.vendors.statements import tables_named_in

__all__ = ["KEY_CHANGE_NOTE", "Hazard", "KeyChange", "find_hazards", "key_changes"]

#: Said once, up front, when a plan changes the type of a primary key (the BigAutoField
#: upgrade of DEFAULT_AUTO_FIELD, Django 6.0's default): a rewrite of each table named.
KEY_CHANGE_NOTE = (
    "this plan changes the type of primary keys and of the foreign keys that follow them: PostgreSQL "
    "rewrites each table altered under an ACCESS EXCLUSIVE lock, MySQL/MariaDB copy it while writes wait, "
    "SQLite remakes it"
)
_CHANGE = re.compile(r"^--   (\S+): (\w+)\.(\w+) (\w+) -> (\w+)(?:: altered: (.*))?$")


@dataclass(frozen=True)
class KeyChange:
    """One line under the runbook's key-change note."""

    migration: str
    table: str
    column: str
    old: str
    new: str
    altered: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hazard:
    name: str  # "bigint-key", "fk-recreated", "rename-model"
    tables: list[str]
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tables": self.tables, "text": self.text}


def key_changes(runbook: Runbook) -> list[KeyChange]:
    """The primary-key type changes the runbook's preamble notes (none in runbooks written
    before the note existed)."""
    changes: list[KeyChange] = []
    noted = False
    for item in runbook.preamble:
        if not isinstance(item, Comment):
            continue
        if item.text == f"-- NOTE: {KEY_CHANGE_NOTE}:":
            noted = True
            continue
        match = _CHANGE.match(item.text) if noted else None
        if match:
            migration, table, column, old, new, altered = match.groups()
            tables = [t.strip() for t in (altered or table).split(",")]
            changes.append(KeyChange(migration, table, column, old, new, tables))
    return changes


_BIGINT = re.compile(r"\b(?:TYPE|MODIFY\s+(?:COLUMN\s+)?\S+)\s+bigint\b", re.IGNORECASE)
_KEY_COLUMN = re.compile(r"\b(?:ALTER\s+COLUMN|MODIFY(?:\s+COLUMN)?)\s+[`\"]?(id|\w+_id)[`\"]?\s", re.IGNORECASE)
_DROP_FK = re.compile(r"\bDROP\s+(?:FOREIGN\s+KEY\s+\S+|CONSTRAINT\s+[`\"]?\w*_fk(?:_\w*)?[`\"]?)", re.IGNORECASE)
_ADD_FK = re.compile(r"\bADD\s+CONSTRAINT\s+\S+\s+FOREIGN\s+KEY\b", re.IGNORECASE)
_RENAME = re.compile(r"^\s*(?:RENAME\s+TABLE\b|ALTER\s+TABLE\s+\S+\s+RENAME\s+TO\b)", re.IGNORECASE)
_DESCRIBED = re.compile(r"^-- (?!NOTE|MANUAL|observed:|Record |\(no-op\))(\S.*)$")


def _tables(sql: str) -> list[str]:
    """The tables ``sql`` names, Django's remake of one (SQLite's new__ copy) as that table."""
    return list(dict.fromkeys(t[len("new__") :] if t.startswith("new__") else t for t in tables_named_in(sql)))


def _renames_a_model(sql: str) -> bool:
    """A table renamed, not the last step of Django's remake of one (new__x renamed to x)."""
    return _RENAME.search(sql) is not None and not any(t.startswith("new__") for t in tables_named_in(sql))


def find_hazards(block: Block, *, changes: list[KeyChange]) -> dict[int, list[Hazard]]:
    """The hazards of ``block``'s statements, by their number in the block (as apply counts)."""
    found: dict[int, list[Hazard]] = {}
    mine = [change for change in changes if change.migration == block.migration]
    dropped: dict[str, int] = {}  # table -> statement that dropped a foreign key of it
    described = ""
    by_op: dict[int | None, list[tuple[int, Step]]] = {}
    number = 0
    for item in block.items:
        if isinstance(item, Comment):
            match = _DESCRIBED.match(item.text)
            described = match.group(1) if match else described
            continue
        if not isinstance(item, Step) or item.kind == "manual":
            continue
        number += 1
        hazards = found.setdefault(number, [])
        tables = _tables(item.sql)
        hazards.extend(_key_hazards(item.sql, tables, mine))
        if _DROP_FK.search(item.sql) and tables:
            dropped[tables[0]] = number
        elif _ADD_FK.search(item.sql) and tables and tables[0] in dropped:
            hazards.append(
                Hazard(
                    "fk-recreated",
                    tables,
                    f"a foreign key of {tables[0]} dropped at statement {dropped[tables[0]]} and created again "
                    f"(Django's AlterField on a ForeignKey): creating it checks every row of {tables[0]} against "
                    f"{', '.join(tables[1:]) or 'the table it refers to'}",
                )
            )
        if described.startswith("Rename model"):
            by_op.setdefault(item.op, []).append((number, item))
    for steps in by_op.values():
        _rename_hazards(steps, found, described_as="RenameModel")
    return {number: hazards for number, hazards in found.items() if hazards}


def _key_hazards(sql: str, tables: list[str], mine: list[KeyChange]) -> list[Hazard]:
    for change in mine:
        touched = [t for t in tables if t in change.altered]
        if touched:
            follows = ", ".join(t for t in change.altered if t != change.table)
            return [
                Hazard(
                    "bigint-key",
                    touched,
                    f"primary key type change {change.table}.{change.column} {change.old} -> {change.new}: alters "
                    f"{', '.join(touched)}" + (f" (the foreign keys that follow it: {follows})" if follows else ""),
                )
            ]
    if not mine and _BIGINT.search(sql):
        column = _KEY_COLUMN.search(sql)
        if column:
            return [
                Hazard(
                    "bigint-key",
                    tables[:1],
                    f"{tables[0] if tables else '?'}.{column.group(1)} becomes bigint: a key column (from its name; "
                    "the runbook carries no key-change note), the table rewritten",
                )
            ]
    return []


def _rename_hazards(steps: list[tuple[int, Step]], found: dict[int, list[Hazard]], *, described_as: str) -> None:
    """A RenameModel's statements on tables other than the one it renames: the foreign keys
    and many-to-many tables that point at the model, which Django alters with it."""
    renamed: set[str] = set()
    for _, step in steps:
        if _renames_a_model(step.sql):
            renamed.update(_tables(step.sql))
    for number, step in steps:
        others = [t for t in _tables(step.sql)[:1] if t not in renamed]  # the table it acts on
        if others and not _renames_a_model(step.sql):
            found[number].append(
                Hazard(
                    "rename-model",
                    others,
                    f"{described_as} also alters {', '.join(others)} (the foreign keys and many-to-many tables that "
                    "point at the model)",
                )
            )
