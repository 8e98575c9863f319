"""Before any change: what each block of a runbook will do on this database, or why not.

Pure: it reads django_migrations rows and the journal's progress, never a connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from byhand.exceptions import PreflightRefused
from byhand.operating.journal import MigrationProgress
from byhand.runbook import Block, Runbook, Step
from byhand.vendors.statements import digest

__all__ = [
    "BlockPlan",
    "check_runbook",
    "describe_plans",
    "manual_step_id",
    "numbered_steps",
    "plan_block",
    "preflight_report",
]

Row = tuple[str, str]
Action = Literal["run", "skip"]


def manual_step_id(block: Block, step: Step) -> str:
    """How the operator names a manual step: APP.MIGRATION:OPERATION."""
    return f"{block.migration}:{step.op}"


def numbered_steps(block: Block) -> list[tuple[int, Step]]:
    """The block's SQL steps numbered from 1, as the journal and messages count them."""
    sql_steps = [step for step in block.steps if step.kind != "manual"]
    return list(enumerate(sql_steps, start=1))


@dataclass
class BlockPlan:
    """The verdict for one block."""

    block: Block
    action: Action
    reason: str
    progress: MigrationProgress = field(default_factory=MigrationProgress)
    #: Record steps to leave out: rows already recorded (the squash bookkeeping block only).
    skip_steps: set[int] = field(default_factory=set)
    #: Manual steps (operation indexes) the operator confirmed, now or in an earlier run.
    manual_passed: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.block.migration or f"({self.block.kind})"

    def resumes_after(self) -> int:
        """The number of statements already committed (the resume point)."""
        return len(self.progress.done)

    def first_pending_manual(self) -> Step | None:
        for step in self.block.manual_steps:
            if step.op not in self.manual_passed:
                return step
        return None


def _rows(rows: list[list[str]]) -> list[Row]:
    return [(app, name) for app, name in rows]


def _key(dotted: str) -> Row:
    app, _, name = dotted.partition(".")
    return app, name


def check_runbook(
    runbook: Runbook,
    *,
    applied: set[Row],
    has_migrations_table: bool,
    progress: dict[str, MigrationProgress],
    manual_done: frozenset[str],
    skip_manual: bool,
) -> list[BlockPlan]:
    """One plan per block, or PreflightRefused listing every problem at once."""
    problems = _unknown_manual_steps(runbook, manual_done)
    backwards = runbook.direction == "backwards"
    will_record: set[Row] = set()  # rows earlier blocks of this runbook write
    will_delete: set[Row] = set()
    plans: list[BlockPlan] = []
    for block in runbook.blocks:
        plan = plan_block(block, applied=applied, has_migrations_table=has_migrations_table, backwards=backwards)
        if plan is None:
            problems.append(
                f"{block.migration}: only some of its rows are recorded ({_listing(block.records, applied)}); "
                "the database changed since the runbook was written: generate it again"
            )
            continue
        if block.migration and plan.action == "run":
            plan.progress = progress.get(block.migration, MigrationProgress())
            problems.extend(_edited_after_running(plan))
            confirmed = {s.op for s in block.manual_steps if manual_step_id(block, s) in manual_done or skip_manual}
            plan.manual_passed = {op for op in confirmed | plan.progress.manual_done if op is not None}
        if block.kind == "migration":
            problem = _out_of_order(plan, applied, will_record if not backwards else will_delete, backwards=backwards)
            problems.extend([problem] if problem else [])
        will_record.update(_rows(block.records))
        will_delete.update(_rows(block.deletes))
        plans.append(plan)
    if problems:
        raise PreflightRefused(problems)
    return plans


def _edited_after_running(plan: BlockPlan) -> list[str]:
    """Statements a run committed (or started) that the runbook now holds otherwise: a
    re-signed edit of what already ran, which resuming would neither undo nor run."""
    steps = dict(numbered_steps(plan.block))
    edited = sorted(
        index
        for index, ran in plan.progress.hashes.items()
        if (index in plan.progress.done or index in plan.progress.started)
        and (index not in steps or digest(steps[index].sql) != ran)
    )
    return [
        f"{plan.name} statement {index} was edited, but a run of the runbook it replaces already "
        f"{'committed it' if index in plan.progress.done else 'started it (it may have taken effect)'}; undo "
        "that edit (resuming runs only the statements after it), or apply the change yourself and generate the "
        "runbook again"
        for index in edited
    ]


def _unknown_manual_steps(runbook: Runbook, manual_done: frozenset[str]) -> list[str]:
    """--manual-step-done naming a step the runbook does not have."""
    known = {manual_step_id(b, s) for b in runbook.blocks for s in b.manual_steps}
    listing = ", ".join(sorted(known)) or "none"
    return [
        f"--manual-step-done {unknown}: the runbook has no such manual step (it has: {listing})"
        for unknown in sorted(manual_done - known)
    ]


def _out_of_order(plan: BlockPlan, applied: set[Row], earlier: set[Row], *, backwards: bool) -> str | None:
    """Forwards: a dependency neither recorded nor recorded by an ``earlier`` block.
    Backwards: a dependent still recorded, and not deleted by an ``earlier`` block."""
    block = plan.block
    if not backwards:
        missing = [r for r in block.requires if _key(r) not in applied and _key(r) not in earlier]
        if missing:
            return (
                f"{block.migration}: needs {', '.join(missing)}, which is neither recorded in "
                "django_migrations nor applied earlier in this runbook"
            )
        return None
    if plan.action != "run":
        return None
    deleting = earlier | set(_rows(block.deletes))
    dependents = [r for r in block.required_by if _key(r) in applied and _key(r) not in deleting]
    if dependents:
        return (
            f"{block.migration}: {', '.join(dependents)} depend(s) on it and are still recorded; "
            "unapply them first (a runbook down to an earlier target does)"
        )
    return None


def _listing(rows: list[list[str]], applied: set[Row]) -> str:
    return ", ".join(f"{a}.{n} {'recorded' if (a, n) in applied else 'not recorded'}" for a, n in rows)


def plan_block(block: Block, *, applied: set[Row], has_migrations_table: bool, backwards: bool) -> BlockPlan | None:
    """Run or skip ``block`` against these recorded rows; None for a partly recorded migration."""
    if block.kind == "setup":
        if has_migrations_table:
            return BlockPlan(block, "skip", "django_migrations exists already")
        return BlockPlan(block, "run", "django_migrations does not exist yet")
    if block.kind == "replacements":
        recorded = [i for i, row in enumerate(_rows(block.records), start=1) if row in applied]
        if len(recorded) == len(block.records):
            return BlockPlan(block, "skip", "every squash is recorded already")
        return BlockPlan(block, "run", "records squashed migrations", skip_steps=set(recorded))
    if backwards:
        if not any(row in applied for row in _rows(block.deletes)):
            return BlockPlan(block, "skip", "not recorded: nothing to unapply")
        return BlockPlan(block, "run", "recorded: will be unapplied")
    present = [row in applied for row in _rows(block.records)]
    if all(present):
        return BlockPlan(block, "skip", "already recorded in django_migrations")
    if any(present):
        return None
    return BlockPlan(block, "run", "not recorded: will be applied")


def describe_plans(plans: list[BlockPlan], *, dry_run: bool) -> list[str]:
    """The verdict, one line per block; with ``dry_run`` also the statements that would run."""
    text = []
    for plan in plans:
        line = f"  {plan.name}: {plan.action}, {plan.reason}"
        if plan.action == "run" and plan.resumes_after():
            line += f"; resuming after {plan.resumes_after()} committed statement(s)"
        if plan.action == "run" and plan.progress.started:
            uncertain = sorted(plan.progress.started)
            which = (
                f"statement {uncertain[0]}" if len(uncertain) == 1 else f"statements {', '.join(map(str, uncertain))}"
            )
            line += f"; {which} may have taken effect before the last run ended: checked first"
        pending = plan.first_pending_manual() if plan.action == "run" else None
        if pending is not None:
            line += f"; will stop before manual step {manual_step_id(plan.block, pending)} ({pending.callable})"
        text.append(line)
        if dry_run and plan.action == "run":
            for index, step in numbered_steps(plan.block):
                if index not in plan.progress.done and index not in plan.skip_steps:
                    first, *rest = step.sql.splitlines()
                    text.append(f"    {index}. {first}" + (f" … (+{len(rest)} lines)" if rest else ""))
    return text


def preflight_report(
    runbook: Runbook,
    plans: list[BlockPlan],
    *,
    checksum: str,
    database: str,
    limits: str,
    dry_run: bool,
    journal_ddl: str | None,
) -> list[str]:
    """What apply says before any change: the runbook, the database, the limits, a
    re-signature, the verdict per block, and the journal's DDL if a dry run would create it."""
    text = [
        f"runbook {runbook.direction}, {len(runbook.migrations)} migration(s), checksum sha256:{checksum}",
        f"database {database}",
        limits,
    ]
    signed = runbook.header.get("signed")
    if signed:
        last = signed[-1]
        text.append(f"re-signed by {last.get('by')} at {last.get('at')} after review (was sha256:{last.get('was')})")
    text.extend(describe_plans(plans, dry_run=dry_run))
    if journal_ddl is not None:
        text.append("the journal table does not exist yet; apply would create it:")
        text.extend("    " + line for line in journal_ddl.splitlines())
    return text
