"""``byhand review``: per statement of a runbook, its tables' live size, what its locks block,
whether it rewrites or reads every row, a risk level with its reasons, a safer form where
there is one, Django's hazards and squawk's findings. Read-only on the database.

What a statement did comes from the runbook ("observed" on the scratch copy); what it does
not say is inferred from the statement's text (byhand.operating.judging); the sizes are read
live here. apply's --refuse-risk gate judges the statements it would run with the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from byhand.exceptions import RiskRefused, VendorMismatch
from byhand.operating.assessing import RiskLevel, Thresholds, at_least
from byhand.operating.judging import StatementReview, assess_runbook, statement_tables
from byhand.operating.preflight import BlockPlan, numbered_steps
from byhand.operating.squawking import run_squawk
from byhand.operating.status import reading, runbook_status
from byhand.runbook import Runbook, escape_comment
from byhand.vendors.reviewing import REVIEW_FACTS, ReviewFacts, TableSize
from byhand.vendors.target import Target

if TYPE_CHECKING:
    from byhand.operating.applying import ApplyOptions

__all__ = [
    "MigrationReview",
    "Review",
    "check_risk",
    "read_index_tables",
    "read_sizes",
    "review_runbook",
    "risky_statements",
    "tables_of",
]


@dataclass
class MigrationReview:
    name: str
    state: str  # as status says: applied, pending, partial (unapplied backwards)
    atomic: bool
    statements: list[StatementReview]
    manual_steps: list[str]


@dataclass
class Review:
    header: dict[str, Any]  # checksum, direction, vendor, database, server, sizes, squawk, thresholds, signed
    migrations: list[MigrationReview]

    @property
    def statements(self) -> list[StatementReview]:
        return [s for m in self.migrations for s in m.statements]


def read_sizes(target: Target, tables: list[str], *, facts: ReviewFacts) -> dict[str, TableSize]:
    """The live size of ``tables`` that exist, in a transaction that may only read."""
    if not tables:
        return {}
    then = "run it again (a lock held on a table's catalog entry makes it wait up to 2s)"
    with reading(target, "the tables' sizes", privilege=facts.catalogue_privilege, then=then):
        with target.read_only(lock_timeout=timedelta(seconds=2), statement_timeout=timedelta(seconds=30)):
            return facts.table_sizes(target, sorted(set(tables)))


def read_index_tables(target: Target, runbook: Runbook, *, facts: ReviewFacts) -> dict[str, str]:
    """The table of each index that a statement not observed drops without naming its table
    (PostgreSQL's DROP INDEX), where it exists: its lock is on that table."""
    distrust = bool(runbook.header.get("signed"))  # re-signed: every statement's text counts
    statements = [
        step.sql for block in runbook.blocks for _, step in numbered_steps(block) if distrust or step.observed is None
    ]
    if not statements:
        return {}
    with reading(target, "the tables of the indexes it drops", privilege=facts.catalogue_privilege):
        with target.read_only(lock_timeout=timedelta(seconds=2), statement_timeout=timedelta(seconds=30)):
            return facts.index_tables(target, statements)


def tables_of(
    runbook: Runbook,
    *,
    skip: Callable[[int, int], bool] = lambda position, index: False,
    facts: ReviewFacts | None = None,
    index_tables: dict[str, str] | None = None,
) -> list[str]:
    """Every table the runbook's statements act on (observed, or named in their text; with
    ``facts``, those their text locks too; in a re-signed runbook, both)."""
    tables: dict[str, None] = {}
    distrust = bool(runbook.header.get("signed"))
    for position, block in enumerate(runbook.blocks):
        for index, step in numbered_steps(block):
            if not skip(position, index):
                named = statement_tables(step, facts=facts, index_tables=index_tables, distrust=distrust)
                tables.update(dict.fromkeys(named))
    return list(tables)


def review_runbook(
    runbook: Runbook, target: Target, *, thresholds: Thresholds, journal_table: str, squawk: bool = True
) -> Review:
    """The whole review of ``runbook`` on the connected ``target``; reads only."""
    if runbook.vendor != target.vendor.name:
        raise VendorMismatch(runbook=runbook.vendor, database=target.vendor.name)
    facts = REVIEW_FACTS[target.vendor.name]
    status = runbook_status(runbook, target, journal_table=journal_table).migrations

    def applied(position: int, index: int) -> bool:
        state = status[position]
        return state.state in ("applied", "unapplied") or (state.state == "partial" and index <= state.done)

    indexes = read_index_tables(target, runbook, facts=facts)
    sizes = read_sizes(target, tables_of(runbook, facts=facts, index_tables=indexes), facts=facts)
    reviews = assess_runbook(
        runbook, facts=facts, sizes=sizes, thresholds=thresholds, applied=applied, index_tables=indexes
    )
    server = target.server_version()
    if not facts.squawk:
        squawk_note = f"squawk reads PostgreSQL only: not run for {target.vendor.name}"
    elif not squawk:
        squawk_note = "squawk not run (--no-squawk)"
    else:
        report = run_squawk(runbook, pg_version=server)
        squawk_note = report.note
        for key, rules in report.findings.items():
            reviews[key].squawk = rules
    migrations = []
    for position, block in enumerate(runbook.blocks):
        statements = [reviews[(position, index)] for index, _ in numbered_steps(block)]
        manual = [f"operation {step.op}: {step.callable}" for step in block.manual_steps]
        migrations.append(
            MigrationReview(status[position].name, status[position].state, block.atomic, statements, manual)
        )
    header = {
        "checksum": runbook.checksum(),
        "direction": runbook.direction,
        "vendor": runbook.vendor,
        "database": target.params.display(),
        "server_version": server,
        "sizes": facts.sizes_source,
        "estimated_sizes": sorted(table for table, size in sizes.items() if size.estimated),
        "squawk": squawk_note,
        "thresholds": {"big_rows": thresholds.big_rows, "big_bytes": thresholds.big_bytes},
        "signed": list(runbook.header.get("signed", [])),  # re-signed: its "observed" may not be byhand's own
        "online": bool(runbook.header.get("online")),
    }
    return Review(header, migrations)


def risky_statements(
    runbook: Runbook, plans: list[BlockPlan], target: Target, *, thresholds: Thresholds, level: RiskLevel
) -> list[str]:
    """For apply's --refuse-risk: each statement that would run (of a block preflight says to
    run, not committed by an earlier run) whose risk, with the sizes read now, is ``level`` or
    above, with its reasons."""
    facts = REVIEW_FACTS[target.vendor.name]
    runs = {position: plan for position, plan in enumerate(plans) if plan.action == "run"}

    def done(position: int, index: int) -> bool:
        plan = runs.get(position)
        return plan is None or index in plan.progress.done or index in plan.skip_steps

    indexes = read_index_tables(target, runbook, facts=facts)
    sizes = read_sizes(target, tables_of(runbook, skip=done, facts=facts, index_tables=indexes), facts=facts)
    reviews = assess_runbook(
        runbook, facts=facts, sizes=sizes, thresholds=thresholds, applied=done, index_tables=indexes
    )
    total = {position: len(numbered_steps(block)) for position, block in enumerate(runbook.blocks)}
    return [  # quoting the runbook, escaped as review's terminal view escapes it
        escape_comment(
            f"{review.migration} statement {review.index}/{total[position]} ({_first_line(review.sql)}): "
            f"{review.risk} risk: {'; '.join(review.reasons)}" + (f"; safer: {review.safer}" if review.safer else "")
        )
        for (position, _), review in reviews.items()
        if not review.applied and at_least(review.risk, level)
    ]


def check_risk(runbook: Runbook, plans: list[BlockPlan], target: Target, options: ApplyOptions) -> str:
    """apply's --refuse-risk gate (``options``: ApplyOptions): RiskRefused naming each
    statement that would run at ``options.refuse_risk`` or above; else what it checked."""
    level, thresholds = options.refuse_risk, options.thresholds
    assert level is not None
    risky = risky_statements(runbook, plans, target, thresholds=thresholds, level=level)
    if risky:
        raise RiskRefused(level, risky, thresholds=thresholds.describe())
    limits = thresholds.describe()
    return f"risk gate (--refuse-risk {level}): no statement that would run is at {level} risk or above ({limits})"


def _first_line(sql: str) -> str:
    first = " ".join(sql.split())
    return first if len(first) <= 70 else first[:69] + "…"
