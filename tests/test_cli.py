"""The console script: works from a runbook alone, with no Django settings and no project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from byhand import __version__
from support import fresh_database, use_database

SCRIPT = Path(sys.executable).with_name("byhand")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, in a bare environment: no settings, no example on the path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO", "PYTHONPATH"))}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def runbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "runbook.sql"
    with fresh_database("default") as settings, use_database("default", settings):
        call_command("byhand", "sql", "shop", "--manual-steps", "-o", str(path))
    return path


def test_version(tmp_path: Path) -> None:
    """--version prints the package version."""
    done = run("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"byhand {__version__}\n")


@pytest.mark.needs_server
def test_inspect_prints_the_plan_without_django_settings(runbook: Path, tmp_path: Path) -> None:
    """inspect verifies the checksum and lists migrations, records and manual steps."""
    done = run("inspect", str(runbook), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("byhand runbook, forwards, checksum sha256:") and lines[0].endswith("(verified)")
    assert "9 migration(s):" in lines
    assert any(line.startswith("  shop.0009_concurrent_index") and "NOT atomic" in line for line in lines)
    assert "      records: shop.0001_initial" in lines
    assert "      MANUAL STEP (operation 3): shop.migrations.0007_sql_and_python.add_first_author" in lines


@pytest.mark.needs_server
def test_inspect_never_imports_django(runbook: Path) -> None:
    """The operating side parses a runbook without Django importable at all."""
    code = (
        "import sys; sys.modules['django'] = None\n"
        "from byhand.cli import main\n"
        f"raise SystemExit(main(['inspect', {str(runbook)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.needs_server
def test_inspect_refuses_an_edited_runbook(runbook: Path, tmp_path: Path) -> None:
    """One changed statement: exit 2 and both checksums."""
    edited = tmp_path / "edited.sql"
    edited.write_text(runbook.read_text().replace("CREATE INDEX", "CREATE UNIQUE INDEX", 1))
    done = run("inspect", str(edited), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"byhand: {edited}: the runbook was changed after it was written")


@pytest.mark.needs_server
def test_inspect_refuses_a_truncated_runbook(runbook: Path, tmp_path: Path) -> None:
    """Half a file: exit 2, 'truncated?'."""
    cut = tmp_path / "cut.sql"
    text = runbook.read_text()
    cut.write_text(text[: len(text) // 2])
    done = run("inspect", str(cut), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "(truncated?)" in done.stderr


def test_inspect_missing_file(tmp_path: Path) -> None:
    """A path that does not exist."""
    done = run("inspect", "nope.sql", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, "byhand: cannot read nope.sql: No such file or directory.\n")


@pytest.mark.parametrize("command", ["review", "status"])
def test_ctrl_c_while_reading_the_runbook_is_one_line_and_exit_130(command: str, tmp_path: Path) -> None:
    """review and status stopped by Ctrl-C (here while the runbook, a FIFO no one writes to,
    is read): one line on standard error, no traceback, apply's exit status for an interruption."""
    fifo = tmp_path / "runbook.sql"
    os.mkfifo(fifo)
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO")}
    # A background job (scripts/test.sh runs each lane with &) inherits SIGINT ignored; a
    # handled signal is reset to its default at exec, which Python turns into KeyboardInterrupt.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [str(SCRIPT), command, str(fifo), "--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    deadline = time.monotonic() + 30
    while not _waits_on_a_fifo(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _waits_on_a_fifo(process.pid), "it never opened the runbook"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert (process.returncode, stdout) == (130, "")
    assert stderr == f"byhand: {command} interrupted (Ctrl-C); it only reads: nothing was changed.\n"


def _waits_on_a_fifo(pid: int) -> bool:
    """Whether process ``pid`` waits in open(2) for a FIFO's writer (where Linux waits then)."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() in ("wait_for_partner", "fifo_open")
    except OSError:
        return False
