"""One hierarchy under ByhandError; each message says what happened, then what to do."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ByhandError",
    "IrreversibleMigrations",
    "ManualStepsRequired",
    "PlanError",
    "RehearsalError",
    "RunbookChecksumMismatch",
    "RunbookFormatError",
    "UnsupportedVendor",
]


class ByhandError(Exception):
    """Base for every error byhand raises."""


class PlanError(ByhandError):
    """The arguments do not name a plan Django could run (unknown app, ambiguous name, ...)."""


class UnsupportedVendor(ByhandError):
    """The database is not PostgreSQL, MySQL/MariaDB or SQLite."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        super().__init__(
            f"database vendor {vendor!r} is not supported; byhand works with PostgreSQL, MySQL/MariaDB and SQLite."
        )


class RehearsalError(ByhandError):
    """The scratch copy of the schema could not be made, or a migration failed on it."""


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


class RunbookFormatError(ByhandError):
    """The file is not a runbook byhand wrote (truncated, edited, or another format)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a valid byhand runbook: {reason}.")


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
