"""Before any change: the queries a runbook's field defaults ran on the database it was
written against (its read markers), run again on this one, read-only. The value such a
default gave is fixed in the runbook's SQL; if the rows it came from are not the same here
now (another database, or the data changed since), every existing row would get a wrong
value, so the run is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from byhand.exceptions import DefaultReadChanged
from byhand.operating.preflight import BlockPlan, numbered_steps
from byhand.runbook import Read, json_rows
from byhand.vendors.target import Target

__all__ = ["changed_reads", "check_reads", "pending_reads"]


def check_reads(
    plans: list[BlockPlan], target: Target, *, lock_timeout: timedelta, timeout: timedelta | None
) -> list[str]:
    """The preflight report's line on the reads of the blocks that will run (none without
    reads), or DefaultReadChanged naming each read that gives something else here now."""
    reads = pending_reads(plans)
    changed = changed_reads(reads, target, lock_timeout=lock_timeout, statement_timeout=timeout)
    if changed:
        raise DefaultReadChanged(changed)
    if not reads:
        return []
    one = len(reads) == 1
    return [
        f"{len(reads)} quer{'y' if one else 'ies'} a field default ran when the runbook was written "
        f"give{'s' if one else ''} the same rows here (read-only): the values fixed in its SQL hold"
    ]


def pending_reads(plans: list[BlockPlan]) -> list[tuple[BlockPlan, Read]]:
    """The read markers of the blocks that will run, but for those whose statements a run
    already committed (resuming a non-atomic migration: the value is in the database)."""
    return [
        (plan, read)
        for plan in plans
        if plan.action == "run"
        for read in plan.block.reads
        if not any(step.op == read.op and index in plan.progress.done for index, step in numbered_steps(plan.block))
    ]


def changed_reads(
    reads: list[tuple[BlockPlan, Read]], target: Target, *, lock_timeout: timedelta, statement_timeout: timedelta | None
) -> list[str]:
    """One line for each read that gives something else here now, or fails; each query runs
    in a read-only transaction of its own, rolled back."""
    problems = []
    answers: dict[str, list[list[Any]] | str] = {}  # query -> its rows, or why it failed (pulpcore: 19 alike)
    for plan, read in reads:
        then = _rows(read.rows)
        if read.query not in answers:
            try:
                with target.read_only(lock_timeout=lock_timeout, statement_timeout=statement_timeout):
                    answers[read.query] = json_rows(target.read_rows(read.query))
            except target.driver_errors() as exc:
                answers[read.query] = target.params.error_text(exc)
        now = answers[read.query]
        if isinstance(now, str):
            problems.append(
                f"{plan.name}: {read.default} read {read.query} when the runbook was written, which gave {then}; "
                f"here it fails now: {now}"
            )
            continue
        if now != read.rows:
            problems.append(
                f"{plan.name}: {read.default} read {read.query} when the runbook was written, which gave {then}; "
                f"here it gives {_rows(now)}"
            )
    return problems


def _rows(rows: list[list[Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False) if rows else "no row"
