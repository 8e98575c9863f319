"""Issue 16, output that goes away or cannot be written: a closed stdout during apply (#16.3),
an unwritable -o for byhand sql (#16.13). Black-box: the console script and manage.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import database_url, fresh_database
from trust_helpers import byhand, byhand_popen, example_runbook, journal_rows, manage, manage_env

pytestmark = pytest.mark.needs_server


@pytest.fixture(scope="module")
def whole_runbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project's whole runbook for an empty database (29 blocks, manual steps written in)."""
    with fresh_database() as db:
        return example_runbook(db, tmp_path_factory.mktemp("output") / "forwards.sql")


def status_json(runbook: Path, db: dict[str, Any]) -> dict[str, Any]:
    done = byhand("status", str(runbook), "--database-url", database_url(db), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- #16.3 a closed stdout ---------------------------------------------------------------------


def test_a_closed_stdout_ends_the_run_without_a_traceback_and_the_journal_tells_the_truth(whole_runbook: Path) -> None:
    """#16.3: the reader of --json goes away after the first migration (as `| head` does): no
    traceback, and the journal's end of run matches the database: `done` only with every
    migration applied (exit 0); otherwise failed/interrupted with the reason, and a non-zero exit."""
    with fresh_database() as db:
        apply = byhand_popen(
            "apply", str(whole_runbook), "--database-url", database_url(db), "--json", "--skip-manual-steps"
        )
        assert apply.stdout is not None and apply.stderr is not None
        for line in apply.stdout:
            if json.loads(line)["event"] == "migration-done":
                break
        apply.stdout.close()  # the reader is gone
        stderr = apply.stderr.read()
        returncode = apply.wait(timeout=120)
        report = status_json(whole_runbook, db)
        pending = [m["name"] for m in report["migrations"] if m["state"] != "applied"]
        ends = [row for row in journal_rows(db) if row["event"] == "run-finished"]
    assert len(ends) == 1, ends
    end = ends[0]
    error = end["error"] or ""
    facts = {
        "traceback": "Traceback" in stderr,
        "journal": end["status"],
        "status --json": report["runs"][0]["outcome"],
        "exit": returncode,
        "pending": len(pending),
    }
    finished = facts == {"traceback": False, "journal": "done", "status --json": "done", "exit": 0, "pending": 0}
    stopped = (
        not facts["traceback"]
        and end["status"] in ("failed", "interrupted")
        and facts["status --json"] == end["status"]
        and returncode not in (0, 2)
        and ("stdout" in error or "standard output" in error)
    )
    assert finished or stopped, f"{facts}, journal error {error!r}; stderr ends {stderr[-300:]!r}"


# -- #16.13 unwritable output ------------------------------------------------------------------


def test_sql_to_a_file_under_a_file_is_one_message(tmp_path: Path) -> None:
    """#16.13: `byhand sql -o DIR/FILE` where DIR is a regular file: one message naming the path,
    exit 1 (sql's error status), no traceback, nothing written."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file\n")
    with fresh_database() as db:
        done = manage(db, "byhand", "sql", "shop", "0001", "-o", str(blocker / "runbook.sql"))
    facts = {"exit": done.returncode, "traceback": "Traceback" in done.stderr}
    assert facts == {"exit": 1, "traceback": False}, done.stderr[-600:]
    assert done.stderr.strip().splitlines() == [
        f"CommandError: cannot write {blocker / 'runbook.sql'}: {blocker} is not a directory."
    ]
    assert blocker.read_text() == "a file\n"


def test_sql_to_a_directory_is_one_message(tmp_path: Path) -> None:
    """#16.13: `byhand sql -o DIR` where DIR is an existing directory: one message, exit 1, no
    traceback, and no temporary file left in the directory."""
    folder = tmp_path / "runbooks"
    folder.mkdir()
    with fresh_database() as db:
        done = manage(db, "byhand", "sql", "shop", "0001", "-o", str(folder))
    facts = {"exit": done.returncode, "traceback": "Traceback" in done.stderr}
    assert facts == {"exit": 1, "traceback": False}, done.stderr[-600:]
    assert done.stderr.strip().splitlines() == [f"CommandError: cannot write {folder}: it is a directory."]
    assert list(folder.iterdir()) == []


def test_sql_to_a_full_stdout_is_one_message(tmp_path: Path) -> None:
    """#16.13: `byhand sql > /dev/full` (no space left on the output): one message, exit 1."""
    with fresh_database() as db, open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "django", "byhand", "sql", "shop", "0001", "--manual-steps"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=manage_env(db),
            timeout=180,
            check=False,
        )
    facts = {"exit": done.returncode, "traceback": "Traceback" in done.stderr}
    assert facts == {"exit": 1, "traceback": False}, done.stderr[-600:]
    assert "cannot write the runbook to standard output" in done.stderr
    assert "No space left on device" in done.stderr
