"""squawk (PyPI ``squawk-cli``, a linter for PostgreSQL migrations) run once on a runbook's
statements, its findings mapped back onto them by line. byhand keeps none of its rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from byhand.operating.preflight import numbered_steps
from byhand.runbook import Control, Runbook, Step

__all__ = ["EXCLUDED_RULES", "SquawkReport", "find_squawk", "run_squawk"]

#: Rules that speak of what byhand apply does for every statement: a lock timeout (and
#: --statement-timeout) set per statement, and a journal that resumes a run that failed part
#: way, so a statement need not be written to run twice.
EXCLUDED_RULES = ("require-lock-timeout", "require-statement-timeout", "prefer-robust-stmts")


@dataclass
class SquawkReport:
    """Rule IDs per statement, keyed (block position in the runbook, statement number), and
    what to tell the reader of how squawk ran (or why it did not)."""

    note: str
    findings: dict[tuple[int, int], list[str]] = field(default_factory=dict)


def find_squawk() -> str | None:
    """squawk on the PATH, or installed beside this Python (a venv's bin, not activated)."""
    found = shutil.which("squawk")
    if found:
        return found
    beside = Path(sys.executable).with_name("squawk")
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _script(runbook: Runbook) -> tuple[str, list[tuple[int, int, tuple[int, int]]]]:
    """The statements as one SQL file, BEGIN/COMMIT where the runbook has them (squawk reads
    transactions), and each statement's lines (0-based, first and last) with its key."""
    lines: list[str] = []
    spans: list[tuple[int, int, tuple[int, int]]] = []
    for position, block in enumerate(runbook.blocks):
        number = {id(step): index for index, step in numbered_steps(block)}
        for item in block.items:
            if isinstance(item, Control) and item.sql in ("BEGIN;", "COMMIT;"):
                lines.append(item.sql)
            elif isinstance(item, Step) and id(item) in number:
                first = len(lines)
                lines.extend(item.sql.split("\n"))
                spans.append((first, len(lines) - 1, (position, number[id(item)])))
    return "\n".join(lines) + "\n", spans


def run_squawk(runbook: Runbook, *, pg_version: str | None, executable: str | None = None) -> SquawkReport:
    """squawk's rule IDs per statement; when squawk is not installed or fails, a note that says so."""
    squawk = executable or find_squawk()
    if squawk is None:
        return SquawkReport("squawk is not installed (pip install 'byhand[squawk]'): no squawk findings")
    script, spans = _script(runbook)
    with tempfile.TemporaryDirectory(prefix="byhand-review-") as folder:
        path = Path(folder) / "runbook.sql"
        path.write_text(script, encoding="utf-8")
        command = [squawk, "--reporter", "json", f"--exclude={','.join(EXCLUDED_RULES)}", str(path)]
        if pg_version:
            command.insert(1, f"--pg-version={pg_version.split()[0]}")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=folder)
            found = json.loads(done.stdout or "[]")
        except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            detail = " ".join(str(getattr(exc, "stderr", "") or exc).split())[:200]
            return SquawkReport(f"squawk did not run: {detail}")
    version = _version(squawk)
    report = SquawkReport(f"{version}, rules left out as byhand apply covers them: {', '.join(EXCLUDED_RULES)}")
    for finding in found if isinstance(found, list) else []:
        line, rule = finding.get("line"), finding.get("rule_name")
        for first, last, key in spans:
            if isinstance(line, int) and first <= line <= last and rule:
                rules = report.findings.setdefault(key, [])
                if rule not in rules:
                    rules.append(str(rule))
    return report


def _version(squawk: str) -> str:
    try:
        done = subprocess.run([squawk, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "squawk"
    return done.stdout.strip() or "squawk"
