"""Where a runbook stands on a database: per migration applied, pending or partial, and the runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from byhand.exceptions import ByhandError, PrivilegeMissing
from byhand.operating.journal import Journal, MigrationProgress, RunSummary
from byhand.operating.preflight import numbered_steps, plan_block
from byhand.operating.run_lock import RUN_LOCK
from byhand.runbook import Runbook
from byhand.vendors.target import Target

__all__ = ["MigrationStatus", "RunbookStatus", "reading", "runbook_status"]


@dataclass
class MigrationStatus:
    name: str
    state: str  # applied, pending, partial (forwards); unapplied, pending, partial (backwards)
    statements: int
    done: int
    failed: tuple[int, str] | None  # statement index and error of the last failure


@dataclass
class RunbookStatus:
    migrations: list[MigrationStatus]
    runs: list[RunSummary]
    lock_holder: str | None


@contextmanager
def reading(
    target: Target, what: str, *, privilege: str | Callable[[], str], then: str = "run it again"
) -> Iterator[None]:
    """What the database refuses while ``what`` is read, as one message: PrivilegeMissing
    naming ``privilege`` (a callable: asked only then) when it is a privilege it wants, else
    what it said and ``then``."""
    try:
        yield
    except target.driver_errors() as exc:
        detail = target.params.error_text(exc)
        if target.is_permission_denied(exc):
            wanted = privilege if isinstance(privilege, str) else privilege()
            raise PrivilegeMissing(what, privilege=wanted, user=target.params.user, detail=detail) from None
        raise ByhandError(f"could not read {what}: {detail.rstrip('.')}. Nothing was changed; {then}.") from None


def runbook_status(runbook: Runbook, target: Target, *, journal_table: str) -> RunbookStatus:
    """Read-only: django_migrations, the journal and the run lock. Besides the migrations,
    the blocks that create django_migrations and record squashes, named as apply names them."""
    with reading(target, "django_migrations", privilege="SELECT on django_migrations"):
        recorded = target.recorded_migrations()
    applied = recorded or set()
    journal = Journal(target, table=journal_table, checksum=runbook.checksum())
    with reading(target, f"the journal {journal_table}", privilege=lambda: target.read_privilege(journal_table)):
        progress = journal.progress(lineage=runbook.replaced())
        runs = journal.runs()
    with reading(target, "who holds the run lock", privilege="the privilege the database names"):
        holder = target.run_lock_holder(RUN_LOCK)
    backwards = runbook.direction == "backwards"
    migrations = []
    for block in runbook.blocks:
        statements = len(numbered_steps(block))
        if block.kind != "migration":  # (setup) creates django_migrations, (replacements) records squashes
            plan = plan_block(block, applied=applied, has_migrations_table=recorded is not None, backwards=backwards)
            done = plan is not None and plan.action == "skip"  # as apply decides
            migrations.append(MigrationStatus(f"({block.kind})", "applied" if done else "pending", statements, 0, None))
            continue
        name = str(block.migration)
        own = block.deletes if backwards else block.records
        recorded_any = any((app, n) in applied for app, n in own)
        finished = not recorded_any if backwards else all((app, n) in applied for app, n in own)
        known = progress.get(name, MigrationProgress())
        if finished:
            state = "unapplied" if backwards else "applied"
        elif known.done or known.started or known.manual_done:  # a failure alone was rolled back
            state = "partial"
        else:
            state = "pending"
        migrations.append(
            MigrationStatus(
                name=name,
                state=state,
                statements=statements,
                done=len(known.done),
                failed=known.failed if not finished else None,
            )
        )
    return RunbookStatus(migrations, runs, holder)
