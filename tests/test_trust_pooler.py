"""Issue 16, #16.11: byhand apply through a connection pooler. A real PgBouncer in transaction
pooling mode, started by the fixture in front of the test PostgreSQL server: apply must
detect it and refuse (exit 2) before any change, saying to connect directly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import VENDOR, database_url, fresh_database
from trust_helpers import (
    Reader,
    bumps,
    byhand,
    byhand_popen,
    holding_probe_item,
    journal_rows,
    probe_at_0001,
    probe_project,
    table_exists,
    wait_until,
)

pytestmark = pytest.mark.needs_server

INI = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 4
ignore_startup_parameters = extra_float_digits
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def pgbouncer() -> Iterator[int]:
    """A PgBouncer (apt package pgbouncer) on a free loopback port, transaction pooling, trust
    authentication, in front of the test server; it refuses to run as root, so under root it
    runs as nobody (-u), its files in a directory nobody can read. Stopped (SIGTERM) after."""
    if VENDOR != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections")
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if binary is None:
        message = "pgbouncer is not installed (apt-get install -y pgbouncer)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    directory = Path(tempfile.mkdtemp(prefix="byhand-pgbouncer-"))
    directory.chmod(0o755)
    listen = _free_port()
    (directory / "pgbouncer.ini").write_text(
        INI.format(host="127.0.0.1", port=5432, listen=listen, directory=directory)
    )
    (directory / "users.txt").write_text('"postgres" ""\n')
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    log = (directory / "log.txt").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {(directory / 'log.txt').read_text()}") from None
                time.sleep(0.05)
        yield listen
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def through(port: int, db: dict[str, Any]) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{db['NAME']}"


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    project = probe_project(tmp_path / "project")
    with fresh_database() as db:
        yield db, probe_at_0001(project, db, tmp_path / "probe-0002.sql")


def test_apply_through_pgbouncer_in_transaction_mode_is_refused(pgbouncer: int, probe: tuple[dict, Path]) -> None:
    """#16.11: apply through PgBouncer (transaction pooling) refuses before any change: exit 2,
    PgBouncer named, the fix (a direct connection) said; no journal, the UPDATE not run."""
    db, runbook = probe
    done = byhand("apply", str(runbook), "--database-url", through(pgbouncer, db))
    facts = {"exit": done.returncode, "updated": bumps(db), "journal": table_exists(db, "byhand_journal")}
    assert facts == {"exit": 2, "updated": 0, "journal": False}, done.stdout[-800:] + done.stderr
    assert "PgBouncer" in done.stderr and "connect directly" in done.stderr, done.stderr


def test_two_applies_through_pgbouncer_do_not_both_run(pgbouncer: int, probe: tuple[dict, Path]) -> None:
    """#16.11: while apply A (through PgBouncer) waits on a lock inside probe.0002, apply B
    (through PgBouncer too) is refused (exit 2) and the UPDATE ran at most once."""
    db, runbook = probe
    url = through(pgbouncer, db)
    with holding_probe_item(db):
        first = byhand_popen("apply", str(runbook), "--database-url", url, "--max-attempts", "30")
        err = Reader(first.stderr)
        err.start()
        try:
            # A either refuses at once (a fixed byhand) or runs its UPDATE and waits.
            wait_until(lambda: first.poll() is not None or bumps(db) == 1, what="apply A")
            second = byhand(
                "apply", str(runbook), "--database-url", url, "--run-lock-wait", "0.3s", "--max-attempts", "1"
            )
        except BaseException:
            first.kill()
            raise
    first.wait(timeout=60)
    err.join(timeout=5)
    facts = {"B exit": second.returncode, "UPDATE runs": bumps(db)}
    assert facts["B exit"] == 2 and facts["UPDATE runs"] <= 1, f"{facts}; B said: {second.stderr}"


def test_a_direct_apply_after_one_through_pgbouncer_is_not_refused(pgbouncer: int, probe: tuple[dict, Path]) -> None:
    """#16.11: an apply through PgBouncer that is refused (here: preflight, an unknown
    --manual-step-done) leaves no run lock behind on a pooled server connection: a direct
    apply right after is not refused as "another byhand apply" and lands probe.0002."""
    db, runbook = probe
    via_pooler = byhand(
        "apply", str(runbook), "--database-url", through(pgbouncer, db), "--manual-step-done", "probe.0002_bump:9"
    )
    assert via_pooler.returncode == 2, via_pooler.stderr
    direct = byhand("apply", str(runbook), "--database-url", database_url(db), "--run-lock-wait", "1s")
    assert "another byhand apply is running" not in direct.stderr, (via_pooler.stderr, direct.stderr)
    assert direct.returncode == 0, direct.stderr
    assert [row["status"] for row in journal_rows(db) if row["event"] == "run-finished"] == ["done"]
