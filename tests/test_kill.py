"""Reliability: SIGKILL the apply process at every statement boundary and inside a long
statement, or have the server end its session; after each, atomic migrations are whole
or absent, django_migrations claims nothing the schema lacks, and running the runbook
again ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from byhand.events import Event
from byhand.exceptions import ConnectionLost
from byhand.operating.preflight import numbered_steps
from byhand.runbook import parse_runbook
from kill_apply import kill_point, run_until_killed
from support import VENDOR, apply, byhand, database_url, fresh_database, midway, target_for, use_database, write_runbook

#: Besides the chain over every point (below), every Nth point is killed in a run of its
#: own from an empty database, and its resume followed to the end (1: every point).
#: scripts/test.sh uses 10 on the Django 5.2 lanes and 40 on the 6.x lanes, where the
#: runbook differs little.
STRIDE = int(os.environ.get("BYHAND_KILL_STRIDE", "1"))
#: "0" leaves the chain out: scripts/test.sh runs it on the Django 5.2 lanes only
#: (byhand apply has no Django in it).
CHAIN = os.environ.get("BYHAND_KILL_CHAIN", "1") != "0"
#: Before each statement, after it (executed, its transaction and journal row not yet
#: committed), and after each migration's commit.
KINDS = ("statement-started", "statement-done", "migration-done")
KILLER = Path(__file__).with_name("kill_apply.py")
TRANSACTIONAL = VENDOR != "mysql"

Snapshot = tuple[str, frozenset[tuple[str, str]]]
Point = tuple[str, object, object]


def snapshot(settings: dict[str, Any]) -> Snapshot:
    """The whole schema's fingerprint (journal included) and the django_migrations rows."""
    target = target_for(settings)
    try:
        return target.state_of(""), frozenset(target.recorded_migrations() or ())
    finally:
        target.close()


class Reference:
    """An uninterrupted run: its kill points in order, the state after each migration, the final state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.points: list[Point] = []
        self.boundaries: set[Snapshot] = set()
        with fresh_database() as db:

            def sink(event: Event) -> None:
                point = kill_point(event)
                if event.name in KINDS and point not in self.points:  # as kill_apply counts
                    self.points.append(point)
                if event.name in ("run-started", "migration-done"):
                    self.boundaries.add(snapshot(db))

            apply(path, db, watch=sink, skip_manual_steps=True)
            self.final = snapshot(db)
        runbook = parse_runbook(path.read_text())
        # The run passed through every migration, so each has kill points before and after it.
        assert {migration for _kind, migration, _index in self.points} >= {b.migration for b in runbook.migrations}
        self.atomic = {b.migration for b in runbook.blocks if b.atomic}

    def check_killed(self, settings: dict[str, Any], point: Point, where: str) -> None:
        """What a run killed at ``point`` may leave."""
        schema, rows = snapshot(settings)
        # django_migrations always holds the rows of a prefix of the plan ...
        assert rows in {r for _, r in self.boundaries}, where
        # ... and, for atomic migrations on transactional DDL, exactly the schema that goes with them.
        if TRANSACTIONAL and point[1] in self.atomic:
            assert (schema, rows) in self.boundaries, where

    def killed_alone(self, number: int) -> None:
        """A run from an empty database killed at the given point; the same runbook then finishes the job."""
        point = self.points[number - 1]
        where = f"killed at point {number}: {point[0]} of {point[1]}"
        with fresh_database() as db:
            assert _killed_in_a_fork(self.path, database_url(db), number) == point, where
            self.check_killed(db, point, where)
            apply(self.path, db, skip_manual_steps=True)
            assert snapshot(db) == self.final, where


@pytest.fixture(scope="module")
def reference(forwards: Path) -> Reference:
    return Reference(forwards)


def test_kill_at_every_point_in_turn_then_resume(forwards: Path, reference: Reference) -> None:
    """One database, SIGKILLed at every statement boundary in turn: each run resumes what the
    killed run before it left and is killed at the next point; a last run finishes the job
    and ends exactly where an uninterrupted run ends."""
    if not CHAIN:
        pytest.skip("BYHAND_KILL_CHAIN=0: the chain runs on the Django 5.2 lanes (byhand apply has no Django in it)")
    _chain(forwards, reference)


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runbook in online forms from an empty database: scenarios.online (PostgreSQL), or
    scenarios.online_copy (MariaDB: algorithms, and copies by pt-online-schema-change)."""
    if VENDOR == "sqlite":
        pytest.skip("online forms are PostgreSQL's and MySQL/MariaDB's")
    path = tmp_path_factory.mktemp("runbooks") / "online.sql"
    scenario = "scenarios.online" if VENDOR == "postgresql" else "scenarios.online_copy"
    with override_settings(MIGRATION_MODULES={"catalog": scenario}):
        with fresh_database() as db, use_database("default", db):
            write_runbook("default", path, "catalog", options=["--online"])
    return path


def test_kill_an_online_runbook_at_every_point_in_turn_then_resume(online: Path) -> None:
    """The chain above over a runbook whose second migration runs as several transactions
    (indexes built CONCURRENTLY, constraints validated in transactions of their own): every
    resume ends exactly where an uninterrupted run ends."""
    runbook = parse_runbook(online.read_text())
    if VENDOR == "postgresql":
        assert [block.online for block in runbook.migrations] == [False, True, False]  # 0003: its own SQL
    else:
        assert [block.online for block in runbook.migrations] == [False, True]
        forms = {step.online["form"] for step in runbook.migrations[1].steps if step.online}
        assert forms == {"algorithm", "copy"}
    reference = Reference(online)
    inside = [point for point in reference.points if point[1] == runbook.migrations[1].migration]
    # Before and after each of its statements, and after it.
    assert len(inside) == 2 * len(numbered_steps(runbook.migrations[1])) + 1
    _chain(online, reference)


def _chain(forwards: Path, reference: Reference) -> None:
    """SIGKILL runs of ``forwards`` on one database at each point in turn, then finish it."""
    points = reference.points
    passed = 0  # points[:passed]: where earlier runs of the chain were killed or went through
    missed: list[int] = []
    with fresh_database() as db:
        while passed < len(points):
            point = _killed_in_a_fork(forwards, database_url(db), 1, passed=frozenset(points[:passed]))
            where = f"chain: the run after point {passed} of {len(points)}"
            assert point is not None, f"{where} ended without being killed (its traceback is above)"
            assert point in points, f"{where} was killed at {point}, a point the uninterrupted run did not pass"
            where += f", killed at {point}"
            number = points.index(point) + 1
            # A resumed run may rightly not pass a point again (a statement found done): kill there alone, below.
            missed += range(passed + 1, number)
            passed = number
            reference.check_killed(db, point, where)
        apply(forwards, db, skip_manual_steps=True)
        assert snapshot(db) == reference.final
    for number in missed:
        reference.killed_alone(number)


def test_kill_at_a_point_then_resume_to_the_end(reference: Reference) -> None:
    """A run from an empty database SIGKILLed at every STRIDE-th statement boundary; the same
    runbook then finishes the job, ending exactly where an uninterrupted run ends."""
    for number in range(1, len(reference.points) + 1, STRIDE):
        reference.killed_alone(number)


def _killed_in_a_fork(path: Path, url: str, number: int, passed: frozenset[Point] = frozenset()) -> Point | None:
    """Run kill_apply in a forked child (no interpreter start-up per kill point): the point it
    was SIGKILLed at, or None if it ended otherwise."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover -- the child never returns
        os.close(read)
        try:
            run_until_killed(str(path), url, set(KINDS), number, passed=passed, report=write)
        except BaseException:  # noqa: BLE001 -- say why in the output: the run ended before its point
            traceback.print_exc()
        finally:
            os._exit(3)
    os.close(write)
    with os.fdopen(read, "rb") as said:
        told = said.read()
    _, status = os.waitpid(child, 0)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        return None
    point: Point = ast.literal_eval(told.decode())
    return point


def _long_table(settings: dict[str, Any], rows: int) -> None:
    """Fill shop_book so that building an index on it takes a while."""
    target = target_for(settings)
    try:
        if VENDOR == "postgresql":
            target.execute(
                "INSERT INTO shop_book (title, code, promo) "
                "SELECT 'book ' || i, 'c', md5(i::text) FROM generate_series(1, %s) AS i",
                (rows,),
            )
        elif VENDOR == "mysql":
            target.execute(
                f"INSERT INTO shop_book (title, code, promo) SELECT CONCAT('book ', seq), 'c', MD5(seq) "
                f"FROM seq_1_to_{int(rows)}"
            )
        else:
            target.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO shop_book (title, code, promo) SELECT 'book ' || i, 'c', hex(randomblob(16)) FROM n",
                (rows,),
            )
    finally:
        target.close()


def _index_state(settings: dict[str, Any]) -> str:
    """'absent', 'valid' or 'invalid' for shop_book_promo_idx."""
    target = target_for(settings)
    try:
        if VENDOR == "postgresql":
            found = target.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = 'shop_book_promo_idx'"
            )
        elif VENDOR == "mysql":
            found = target.execute(
                "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                "AND INDEX_NAME = 'shop_book_promo_idx'"
            )
        else:
            found = target.execute("SELECT 1 FROM sqlite_master WHERE name = 'shop_book_promo_idx'")
        return "absent" if not found else ("valid" if found[0][0] else "invalid")
    finally:
        target.close()


def _prepared(settings: dict[str, Any], path: Path) -> None:
    """Django migrates to shop 0008; a big shop_book; the runbook for 0009 (the index build)."""

    midway(settings, path, "shop", at="0008")
    _long_table(settings, 1_000_000 if VENDOR == "sqlite" else 300_000)


def _until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _building(settings: dict[str, Any]) -> int | None:
    """The server session building shop_book_promo_idx, if one is."""
    target = target_for(settings)
    try:
        if VENDOR == "postgresql":
            found = target.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND query LIKE 'CREATE INDEX%%promo%%'"
            )
        else:
            found = target.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                "AND INFO LIKE 'CREATE INDEX%%promo%%'"
            )
        return int(found[0][0]) if found else None
    finally:
        target.close()


@pytest.mark.needs_server
def test_kill_inside_a_long_statement_then_resume(tmp_path: Path) -> None:
    """SIGKILL byhand while it builds an index on 300,000 rows; the resumed run decides from the
    journal's before-state whether the build took effect, and finishes."""
    path = tmp_path / "shop-0009.sql"
    with fresh_database() as db:
        _prepared(db, path)
        if VENDOR == "sqlite":
            # No server to watch: the child kills itself 0.2 s into the build (which takes > 1 s).
            child = subprocess.Popen(
                [sys.executable, str(KILLER), str(path), database_url(db), "statement-started", "1", "0.2"]
            )
        else:
            child = subprocess.Popen(
                [sys.executable, str(KILLER), str(path), database_url(db), "statement-started", "9"]
            )
            _until(lambda: _building(db) is not None, "the index build to start")
            child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        if VENDOR != "sqlite":
            # The server finishes the statement of a client that died; byhand's run lock is
            # held by that session until then, so wait for it as an operator would.
            _until(lambda: _building(db) is None, "the orphaned build to end")
        assert ("shop", "0009_concurrent_index") not in _rows(db)
        left_behind = _index_state(db)
        events, _ = apply(path, db)
        decisions = [e.data["decision"] for e in events if e.name == "statement-took-effect"]
        if VENDOR != "sqlite":  # SQLite rolled the build back with its transaction: nothing to decide
            # The server usually finishes the dead client's build; MariaDB was seen (under
            # load) to abandon it instead. Either way the decision must match what is there.
            assert len(decisions) == 1
            assert ("counted as done" in decisions[0]) == (left_behind == "valid"), (left_behind, decisions)
        assert _index_state(db) == "valid"
        assert ("shop", "0009_concurrent_index") in _rows(db)


@pytest.mark.needs_server
def test_server_ending_the_session_mid_statement_then_resume(tmp_path: Path) -> None:
    """pg_terminate_backend / KILL on byhand's session during the index build: exit 1,
    nothing recorded; the resumed run drops a leftover INVALID index, builds it, records it."""
    if VENDOR == "sqlite":
        pytest.skip("SQLite has no server to end the session")
    path = tmp_path / "shop-0009.sql"
    with fresh_database() as db:
        _prepared(db, path)
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "byhand"), "apply", str(path), "--database-url", database_url(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _until(lambda: _building(db) is not None, "the index build to start")
        killer = target_for(db)
        pid = _building(db)
        killer.execute(
            "SELECT pg_terminate_backend(%s)" if VENDOR == "postgresql" else f"KILL CONNECTION {pid}",
            (pid,) if VENDOR == "postgresql" else None,
        )
        killer.close()
        _out, err = child.communicate(timeout=60)
        assert child.returncode == 1, err
        assert "lost the connection to the database" in err
        assert ("shop", "0009_concurrent_index") not in _rows(db)
        assert _index_state(db) in ({"invalid", "absent"} if VENDOR == "postgresql" else {"absent"})
        apply(path, db)
        assert _index_state(db) == "valid"
        assert ("shop", "0009_concurrent_index") in _rows(db)
        status = byhand("status", str(path), "--database-url", database_url(db))
        assert "connection-lost" in status.stdout or "interrupted" in status.stdout, status.stdout


def _rows(settings: dict[str, Any]) -> frozenset[tuple[str, str]]:
    return snapshot(settings)[1]


def test_connection_lost_is_an_apply_error() -> None:
    """ConnectionLost exits 1 (failed, database consistent), like any ApplyError."""
    from byhand.console import report_error
    from byhand.exceptions import ExitStatus

    assert report_error(ConnectionLost(where="x", detail="y")) == ExitStatus.FAILED == 1
