"""One hierarchy under ByhandError; each message says what happened, then what to do, and
each class carries the exit status the front ends end with."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import ClassVar

__all__ = [
    "ApplyError",
    "BadDatabaseUrl",
    "ByhandError",
    "CannotConnect",
    "CommandInterrupted",
    "ConnectionLost",
    "CopyUnwanted",
    "DatabaseUnavailable",
    "DefaultReadChanged",
    "DriverUnavailable",
    "ExitStatus",
    "GaveUpOnLocks",
    "Interrupted",
    "IrreversibleMigrations",
    "ManualStepAlreadyRun",
    "ManualStepOutOfPlace",
    "ManualStepPending",
    "ManualStepsRequired",
    "OnlineUnsupported",
    "PlanError",
    "PoolerInTheWay",
    "PreflightRefused",
    "PrivilegeMissing",
    "RehearsalError",
    "RiskRefused",
    "RunLockHeld",
    "RunbookChecksumMismatch",
    "RunbookFormatError",
    "RunbookUnreadable",
    "StatementFailed",
    "UnsafeName",
    "UnsupportedVendor",
    "VendorMismatch",
]


class ExitStatus(IntEnum):
    """What a command's exit status says (README, "Exit statuses")."""

    OK = 0  # done, nothing to do, or a dry run
    FAILED = 1  # failed part-way, the database consistent: run again to resume
    REFUSED = 2  # refused before any change: bad input, preflight, another apply running
    GAVE_UP = 3  # gave up waiting for locks
    MANUAL_STEP = 4  # stopped before a manual step the operator has to run
    INTERRUPTED = 130  # interrupted: Ctrl-C, SIGTERM, SIGHUP, or its output was closed


class ByhandError(Exception):
    """Base for every error byhand raises."""

    exit_status: ClassVar[ExitStatus] = ExitStatus.REFUSED


class PlanError(ByhandError):
    """The arguments do not name a plan Django could run (unknown app, ambiguous name, ...)."""


class UnsafeName(ByhandError):
    """A migration or app name holds a control character a runbook cannot hold safely."""

    def __init__(self, name: str, *, shown: str) -> None:
        self.name = name
        super().__init__(
            f"the migration {shown} holds a control character (a line break or the like): a runbook cannot "
            "write it into its comments and SQL literals safely. Rename its file (or app) to printable "
            "characters, then run byhand sql again (nothing was written)."
        )


class ManualStepOutOfPlace(ByhandError):
    """run-python was asked for a manual step the database is not at (or in the wrong direction)."""

    def __init__(self, step: str, *, backwards: bool, problems: Sequence[str], journal_table: str) -> None:
        self.step = step
        self.backwards = backwards
        self.problems = list(problems)
        direction = "backwards" if backwards else "forwards"
        super().__init__(
            f"refusing to run {step} {direction}: {'; '.join(self.problems)}. Nothing was run. If the "
            f"database really is at that step, run again with --force REASON (the reason is kept in {journal_table})."
        )


class ManualStepAlreadyRun(ByhandError):
    """run-python was asked for a manual step whose last run, in that direction, is done: running
    it again would repeat its work (rows added twice, an update applied twice)."""

    def __init__(self, step: str, *, backwards: bool, ran: str, journal_table: str) -> None:
        self.step = step
        self.backwards = backwards
        self.ran = ran
        direction, other = ("backwards", "forwards") if backwards else ("forwards", "backwards")
        super().__init__(
            f"refusing to run {step} {direction}: {ran}, and nothing has run it {other} since. Nothing was run. "
            f"Its work is in the database: go on with byhand apply RUNBOOK --manual-step-done {step}. To run it "
            f"again on purpose, run again with --force REASON (the reason is kept in {journal_table})."
        )


class DatabaseUnavailable(ByhandError):
    """The database could not be reached or read (planning side)."""

    def __init__(self, alias: str, error: Exception) -> None:
        super().__init__(
            f"could not read the migration history of database '{alias}': "
            f"{str(error).strip()}. Check that the server is up and the settings are right."
        )


class UnsupportedVendor(ByhandError):
    """The database is not PostgreSQL, MySQL/MariaDB or SQLite."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        super().__init__(
            f"database vendor {vendor!r} is not supported; byhand works with PostgreSQL, MySQL/MariaDB and SQLite."
        )


class RehearsalError(ByhandError):
    """The scratch copy of the schema could not be made, or a migration failed on it."""


class CopyUnwanted(RehearsalError):
    """The scratch copy was stopped half-way because nobody needs it any more."""


class IrreversibleMigrations(ByhandError):
    """A backwards plan holds operations that cannot be reversed."""

    def __init__(self, operations: Sequence[str]) -> None:
        self.operations = list(operations)
        listing = "\n".join(f"  {op}" for op in self.operations)
        super().__init__(
            f"the backwards plan holds {len(self.operations)} irreversible operation(s):\n"
            f"{listing}\nChoose a target after them, or give them a reverse_code / reverse_sql."
        )


class ManualStepsRequired(ByhandError):
    """The plan holds RunPython operations and the user did not ask to write them as manual steps."""

    def __init__(self, steps: Sequence[str]) -> None:
        self.steps = list(steps)
        listing = "\n".join(f"  {step}" for step in self.steps)
        super().__init__(
            f"the plan holds {len(self.steps)} Python operation(s) that cannot be written as SQL:\n"
            f"{listing}\nRerun with --manual-steps to write them into the runbook as manual "
            "steps for the operator (nothing was written)."
        )


class OnlineUnsupported(ByhandError):
    """``byhand sql --online`` for a vendor byhand has no online forms for (SQLite)."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor  # as people name it: "MySQL/MariaDB"
        super().__init__(
            f"--online has no safe forms for {vendor}: only PostgreSQL's (CREATE INDEX CONCURRENTLY, "
            "NOT VALID + VALIDATE CONSTRAINT, UNIQUE USING INDEX, a validated CHECK before SET NOT NULL) and "
            "MySQL/MariaDB's (ALGORITHM=INSTANT, NOCOPY or INPLACE with LOCK=NONE in the statement). "
            "Rerun without --online; 'byhand review' shows what each statement locks (nothing was written)."
        )


class RunbookFormatError(ByhandError):
    """The file is not a runbook byhand wrote (truncated, edited, or another format)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a valid byhand runbook: {reason}.")


class RunbookUnreadable(ByhandError):
    """A runbook file that cannot be read, or is not a valid runbook (the reason says which)."""

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(message)


class RunbookChecksumMismatch(ByhandError):
    """The runbook's body does not match the checksum written under it."""

    def __init__(self, *, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"the runbook was changed after it was written: its checksum says sha256:{expected}, "
            f"its body hashes to sha256:{actual}. Generate it again, or review the change "
            "and re-sign it."
        )


# -- applying: refused before any change -------------------------------------------------


class BadDatabaseUrl(ByhandError):
    """The database URL cannot be read."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"bad database URL: {reason}.")


_CHECK = "the host, port, user, password and database name"


class CannotConnect(ByhandError):
    """The database refused the connection or could not be reached."""

    def __init__(
        self, database: str, detail: str, *, check: str = "the host, port, user, password and database name"
    ) -> None:
        self.database = database
        self.detail = detail
        super().__init__(f"cannot connect to {database}: {detail.rstrip('.?')}. Check {check} (nothing was changed).")


class PrivilegeMissing(ByhandError):
    """The database refused a read of status or review for want of a privilege."""

    def __init__(self, what: str, *, privilege: str, user: str | None, detail: str) -> None:
        self.what = what
        self.privilege = privilege
        self.user = user
        self.detail = detail
        who = f"database user {user}" if user else "this database user"
        super().__init__(
            f"cannot read {what} as {who}: {detail.rstrip('.')}. Grant {user or 'it'} {privilege} (review and "
            "status only read), or connect as a user that has it."
        )


class DriverUnavailable(ByhandError):
    """No driver for the database can be imported (or the one asked for cannot)."""

    def __init__(self, database: str, detail: str) -> None:
        self.database = database
        self.detail = detail
        super().__init__(f"cannot connect to {database}: {detail.rstrip('.')} (nothing was changed).")


class VendorMismatch(ByhandError):
    """The runbook was written for another database vendor."""

    def __init__(self, *, runbook: str, database: str) -> None:
        self.runbook = runbook
        self.database = database
        super().__init__(
            f"the runbook was written for {runbook}, but the database is {database}. Generate the runbook "
            "against this database (manage.py byhand sql) (nothing was changed)."
        )


class PoolerInTheWay(ByhandError):
    """The connection goes through a connection pooler, which would share byhand's session."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"{reason}. byhand needs one server session for the whole run: its run lock, its session's lock "
            "timeouts and the journal's transactions would land on the pooler's other server connections, so two "
            "applies could both run: connect directly to the server (nothing was changed). If the pooler keeps one "
            "server session per client connection for as long as it is connected (PgBouncer's pool_mode = "
            "session), pass --allow-session-pooler."
        )


class RunLockHeld(ByhandError):
    """Another byhand apply is running against the same database."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(
            f"another byhand apply is running against this database: {holder}. Wait for it to finish, "
            "or find out why it is still running (nothing was changed)."
        )


class PreflightRefused(ByhandError):
    """The runbook does not fit the database's django_migrations, or the options do not fit the runbook."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"preflight refused the runbook (nothing was changed):\n{listing}")


class RiskRefused(PreflightRefused):
    """apply --refuse-risk: a statement that would run is at that risk level or above."""

    def __init__(self, level: str, statements: Sequence[str], *, thresholds: str) -> None:
        self.level = level
        self.problems = list(statements)
        listing = "\n".join(f"  {statement}" for statement in self.problems)
        ByhandError.__init__(
            self,
            f"preflight refused the runbook (nothing was changed): {len(self.problems)} statement(s) that would "
            f"run are at {level} risk or above (--refuse-risk {level}; {thresholds}):\n{listing}\n"
            "See the whole review with 'byhand review RUNBOOK --database-url URL'. Run it in a quiet window "
            "without --refuse-risk (or with a higher level), or write the safer form into the migrations and "
            "generate the runbook again.",
        )


class DefaultReadChanged(PreflightRefused):
    """A field default's value in the runbook came from a query on the database it was written
    against, and that query gives something else (or fails) on this database now."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  {problem}" for problem in self.problems)
        ByhandError.__init__(
            self,
            "preflight refused the runbook (nothing was changed): a field default's value, fixed in it when it "
            f"was written, came from data that is not the same here now:\n{listing}\nWrite the runbook again "
            "against this database (manage.py byhand sql), review it, and apply that one.",
        )


class CommandInterrupted(ByhandError):
    """A console command other than apply (review, status, inspect, sign) was interrupted:
    Ctrl-C, SIGTERM, SIGHUP. ``then``: what that leaves, said after the reason."""

    exit_status = ExitStatus.INTERRUPTED

    def __init__(self, command: str, *, reason: str, then: str) -> None:
        self.command = command
        self.reason = reason or "Ctrl-C"
        super().__init__(f"{command} interrupted ({self.reason}); {then}")


# -- applying: stopped part-way, database consistent ---------------------------------------


class ApplyError(ByhandError):
    """A run stopped part-way; every migration is fully applied and recorded, or not at all
    (or, for non-atomic ones, resumable from the journal)."""

    exit_status = ExitStatus.FAILED


class StatementFailed(ApplyError):
    """The database refused a statement (not a lock timeout)."""

    def __init__(
        self,
        *,
        where: str,
        error: str,
        rolled_back: bool,
        committed: str = "",
        left: str | None = None,
        advice: str | None = None,
        undone: str | None = None,
    ) -> None:
        self.where = where
        self.error = error
        if undone is None:
            undone = "its transaction was rolled back" if rolled_back else "what it did before failing stays"
        if left is not None:  # a CONCURRENTLY build's INVALID index
            undone = f"it left what running the runbook again drops first ({left})"
        after = f" {committed}" if committed else ""
        then = f" {advice}." if advice else " Fix the cause and run the same runbook again to resume."
        super().__init__(f"{where} failed: {error.rstrip('.')}. {undone[0].upper() + undone[1:]}.{after}{then}")


class GaveUpOnLocks(ApplyError):
    """A statement did not get its lock within --max-attempts / --max-wait."""

    exit_status = ExitStatus.GAVE_UP

    def __init__(
        self,
        *,
        where: str,
        attempts: int,
        waited: float,
        lock_timeout: str,
        blockers: Sequence[str],
        committed: str = "Nothing of that migration is committed.",
    ) -> None:
        self.where = where
        self.attempts = attempts
        self.blockers = list(blockers)
        blocked = (
            f"Blocked by {' | '.join(self.blockers)}."
            if self.blockers
            else "Nobody was found blocking it at the last attempt (the blocker may have finished)."
        )
        super().__init__(
            f"{where}: gave up after {attempts} attempt(s) over {waited:.1f}s, lock timeout {lock_timeout}. {blocked} "
            f"{committed} Run the same runbook again later (it resumes; applied migrations are skipped), or pass "
            "--cancel-blockers-after."
        )


class ManualStepPending(ApplyError):
    """The run reached a manual step (RunPython) the operator has not confirmed."""

    exit_status = ExitStatus.MANUAL_STEP

    def __init__(self, *, migration: str, op: int, callable: str, committed: int, command: str) -> None:
        self.migration = migration
        self.op = op
        self.callable = callable
        self.command = command
        before = (
            f"Its first {committed} statement(s) are committed; the migration is not recorded yet. "
            if committed
            else ""
        )
        super().__init__(
            f"{migration}: stopped before manual step {op}, the Python function {callable}. {before}"
            f"Run that function against this database on a host with the project's code ({command}), "
            f"then run the same runbook again with --manual-step-done {migration}:{op} (or --skip-manual-steps if "
            "it is not needed here)."
        )


class ConnectionLost(ApplyError):
    """The connection to the database was lost part-way (server restart, session terminated)."""

    def __init__(self, *, where: str, detail: str) -> None:
        self.where = where
        super().__init__(
            f"{where}: lost the connection to the database ({detail}). An open transaction was rolled "
            "back by the server; run the same runbook again to resume."
        )


class Interrupted(ApplyError):
    """The run was interrupted: Ctrl-C, SIGTERM, SIGHUP, or its standard output closed."""

    exit_status = ExitStatus.INTERRUPTED

    def __init__(self, where: str, *, reason: str = "") -> None:
        self.where = where
        self.reason = reason or "Ctrl-C"
        super().__init__(
            f"interrupted ({self.reason}) at {where}. The open transaction was rolled back; run the same runbook "
            "again to resume."
        )
