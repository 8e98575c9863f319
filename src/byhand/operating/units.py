"""How a block runs: split into units, each run (and retried) as one piece, and linked so
that journal rows ride on the next write. Pure: no connection."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from byhand.operating.preflight import BlockPlan, numbered_steps
from byhand.runbook import Control, Item, Step

__all__ = ["Unit", "UnitKind", "link_units", "split_block"]

UnitKind = Literal["transaction", "alone", "control", "manual-stop", "finish"]


@dataclass
class Unit:
    """What runs (and is retried) as one piece: a transaction, one statement that commits
    alone, a control statement, or the manual step the run stops at."""

    kind: UnitKind
    items: list[tuple[int | None, Item]] = field(default_factory=list)
    completes: bool = False  # writes the block's "migration done" journal row
    bookkeeping: bool = False  # django_migrations rows only (outside a BEGIN/COMMIT block)
    #: The next statement, when it commits alone: its "started" row goes with this unit's write.
    prestart: tuple[BlockPlan, int, Step] | None = None
    #: The next unit is a transaction: this statement's "done" row goes with its write.
    defer_done: bool = False


def split_block(plan: BlockPlan, *, runs_alone: Callable[[str], bool]) -> list[Unit]:
    """The units of one block, leaving out statements already done: a BEGIN ... COMMIT is
    one transaction; outside one, each statement is a transaction of its own, or runs
    alone when it commits by itself; a squash's rows share one transaction; the run stops
    at the first manual step the operator has not confirmed."""
    block = plan.block
    numbered = numbered_steps(block)
    index_of = {id(step): index for index, step in numbered}
    units: list[Unit] = []
    current: Unit | None = None
    for item in block.items:
        if isinstance(item, Control):
            if item.sql == "BEGIN;":
                current = Unit("transaction")
                units.append(current)
            elif item.sql == "COMMIT;":
                current = None
            elif current is not None:
                current.items.append((None, item))
            else:
                units.append(Unit("control", [(None, item)]))
        elif isinstance(item, Step) and item.kind == "manual":
            if item.op not in plan.manual_passed:
                units.append(Unit("manual-stop", [(None, item)]))
                break
            if item.op not in plan.progress.manual_done:  # confirmed now: journal it
                (current or _append(units, Unit("transaction"))).items.append((None, item))
        elif isinstance(item, Step):
            index = index_of[id(item)]
            if index in plan.progress.done or index in plan.skip_steps:
                continue
            previous = units[-1] if units else None
            if current is not None:
                current.items.append((index, item))
            elif item.kind == "record" and previous is not None and previous.bookkeeping:
                previous.items.append((index, item))  # a squash's rows: all or none
            else:
                kind: UnitKind = "alone" if runs_alone(item.sql) else "transaction"
                units.append(Unit(kind, [(index, item)], bookkeeping=item.kind == "record"))
    last = numbered[-1][0] if numbered else None
    holder = next((u for u in units if any(i == last for i, _ in u.items)), None)
    if holder is not None and holder.kind == "transaction":
        holder.completes = True
    elif not any(u.kind == "manual-stop" for u in units):
        units.append(Unit("finish", completes=True))
    return units


def link_units(blocks: list[tuple[BlockPlan, list[Unit]]]) -> None:
    """Across the whole run: a unit before a statement that commits alone writes that
    statement's "started" row; a statement alone before a transaction leaves its "done"
    row to that transaction."""
    flat = [(plan, unit) for plan, units in blocks for unit in units]
    for (_, unit), (next_plan, following) in itertools.pairwise(flat):
        if following.kind == "alone" and unit.kind in ("alone", "transaction"):
            next_index, next_step = following.items[0]
            assert isinstance(next_step, Step) and next_index is not None
            unit.prestart = (next_plan, next_index, next_step)
        elif following.kind == "transaction" and unit.kind == "alone":
            unit.defer_done = True


def _append(units: list[Unit], unit: Unit) -> Unit:
    units.append(unit)
    return unit
