"""Events: one line for a person, one JSON object for a machine; and as the console script prints them."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest

from builders import MIGRATIONS_DDL, SQLITE_NOW, record, sqlite_block
from byhand.console import EventPrinter
from byhand.events import _TEXT, EVENT_NAMES, Event, describe, to_json
from byhand.operating.applying import ApplyOptions, apply_runbook
from byhand.operating.monitor import BlockerAction
from byhand.operating.status import runbook_status
from byhand.runbook import Runbook, Step
from byhand.vendors import get_target
from byhand.vendors.params import parse_database_url
from byhand.vendors.target import Blocker
from support import ROOT

AT = datetime(2026, 11, 25, 21, 4, 7, 250000, tzinfo=timezone.utc)
RUN = "2b8dc9accb0948d2826e921b0f947f88"
SUMMARY = 'CREATE INDEX CONCURRENTLY "shop_book_title_idx" ON "shop_book" ("title");'

IDLE = Blocker(
    pid=4121,
    user="deploy",
    application="gunicorn",
    client="10.0.0.5",
    state="idle in transaction",
    transaction_age=timedelta(seconds=5.5),
    query_start=AT,
    query='SELECT "shop_book"."id" FROM "shop_book" FOR UPDATE',
)
ACTIVE = Blocker(
    pid=4177,
    user="report",
    application=None,
    client="10.0.0.9",
    state="active",
    transaction_age=timedelta(seconds=42),
    query_start=AT,
    query='SELECT COUNT(*) FROM "shop_book"',
)


def as_event(blocker: Blocker) -> dict[str, Any]:
    """A blocker as applying puts it into an event."""
    return blocker.as_dict()


# (name, data as applying emits it, the line describe() gives)
CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "preflight",
        {"text": "  shop.0003_review: run, not recorded: will be applied"},
        "  shop.0003_review: run, not recorded: will be applied",
    ),
    (
        "run-started",
        {"run": RUN, "operator": "deploy@app-1", "database": "postgresql://deploy@db.example.com:5432/shop"},
        f"run {RUN} started by deploy@app-1 on postgresql://deploy@db.example.com:5432/shop",
    ),
    (
        "migration-skipped",
        {"migration": "shop.0001_initial", "reason": "already recorded in django_migrations"},
        "shop.0001_initial: skipped, already recorded in django_migrations",
    ),
    (
        "migration-started",
        {"migration": "shop.0003_review", "block": "migration", "position": 2, "count": 3, "resume_after": 1},
        "[2/3] shop.0003_review (resuming after statement 1)",
    ),
    (
        "statement-started",
        {"migration": "shop.0004_title_idx", "index": 1, "total": 2, "attempt": 3, "summary": SUMMARY},
        f"  shop.0004_title_idx statement 1/2, attempt 3: {SUMMARY}",
    ),
    (
        "statement-done",
        {"migration": "shop.0004_title_idx", "index": 1, "total": 2, "elapsed": 12.34567, "summary": SUMMARY},
        f"  shop.0004_title_idx statement 1/2 done in 12.346s: {SUMMARY}",
    ),
    (
        "statement-took-effect",
        {
            "migration": "shop.0004_title_idx",
            "index": 1,
            "total": 2,
            "decision": "had not taken effect (the objects it changes are as before it started): will run again",
        },
        "  shop.0004_title_idx statement 1/2: had not taken effect (the objects it changes are as before it "
        "started): will run again",
    ),
    (
        "lock-timeout",
        {
            "migration": "shop.0002_book_isbn",
            "index": 1,
            "total": 2,
            "attempt": 3,
            "lock_timeout": 0.1,
            "retry_in": 0.6321,
            "blockers": [as_event(IDLE), as_event(ACTIVE)],
        },
        "  shop.0002_book_isbn statement 1/2: lock not granted within 0.1s (attempt 3); blocked by "
        "pid 4121 deploy@10.0.0.5 (gunicorn), idle in transaction, transaction open 5.5s: "
        'SELECT "shop_book"."id" FROM "shop_book" FOR UPDATE; '
        'pid 4177 report@10.0.0.9, active, transaction open 42.0s: SELECT COUNT(*) FROM "shop_book"; '
        "retrying in 0.63s",
    ),
    (
        "blocker-cancelled",
        {"migration": "shop.0002_book_isbn", "blocker": as_event(ACTIVE)},
        "  cancelled the query of pid 4177 report@10.0.0.9, active, transaction open 42.0s: "
        'SELECT COUNT(*) FROM "shop_book"',
    ),
    (
        "blocker-terminated",
        {"migration": "shop.0002_book_isbn", "blocker": as_event(IDLE)},
        "  terminated the session of pid 4121 deploy@10.0.0.5 (gunicorn), idle in transaction, transaction open "
        '5.5s: SELECT "shop_book"."id" FROM "shop_book" FOR UPDATE',
    ),
    (
        "invalid-index-dropped",
        {"migration": "shop.0004_title_idx", "sql": 'DROP INDEX CONCURRENTLY IF EXISTS "shop_book_title_idx";'},
        '  dropped the INVALID index a failed attempt left: DROP INDEX CONCURRENTLY IF EXISTS "shop_book_title_idx";',
    ),
    (
        "waiting",
        {
            "migration": "shop.0004_title_idx",
            "index": 1,
            "total": 2,
            "elapsed": 12.34,
            "progress": "building index: scanning table, 41% of blocks",
            "blockers": [],
        },
        "  shop.0004_title_idx statement 1/2: running 12.3s; building index: scanning table, 41% of blocks",
    ),
    (
        "manual-step",
        {
            "migration": "shop.0003_review",
            "step": 1,
            "callable": "shop.migrations.0003_review.fill_ratings",
            "status": "done (as the operator said)",
        },
        "  shop.0003_review: manual step 1 (shop.migrations.0003_review.fill_ratings): done (as the operator said)",
    ),
    (
        "migration-done",
        {"migration": "shop.0003_review", "block": "migration", "elapsed": 1.2345, "attempts": 2},
        "  shop.0003_review: done in 1.23s, 2 attempt(s)",
    ),
    (
        "run-finished",
        {"run": RUN, "outcome": "gave-up", "elapsed": 61.005, "summary": "1 applied, 2 skipped"},
        f"run {RUN} gave-up in 61.01s: 1 applied, 2 skipped",
    ),
]


def test_every_event_has_a_case_here() -> None:
    """A new event name needs a line in CASES (and so a test), and a line in describe()."""
    assert sorted(name for name, _data, _line in CASES) == sorted(EVENT_NAMES)
    assert set(_TEXT) == EVENT_NAMES


def test_the_executor_emits_exactly_the_event_names() -> None:
    """Every name the operating side passes to emit() is an EventName, and every EventName is emitted."""
    emitted = set()
    for path in (ROOT / "src" / "byhand" / "operating").glob("*.py"):
        emitted |= set(re.findall(r'emit\(\s*"([a-z-]+)"', path.read_text()))
    emitted |= set(get_args(BlockerAction))  # emitted as the action taken
    assert emitted == EVENT_NAMES


@pytest.mark.parametrize(("name", "data", "line"), CASES, ids=[case[0] for case in CASES])
def test_describe_gives_one_line_per_event(name: str, data: dict[str, Any], line: str) -> None:
    """Each event, with the keys applying gives it, reads as one line."""
    assert describe(Event(name, data, at=AT)) == line


@pytest.mark.parametrize(("name", "data", "line"), CASES, ids=[case[0] for case in CASES])
def test_to_json_round_trips_with_event_and_time(name: str, data: dict[str, Any], line: str) -> None:
    """One JSON object: the event name, the time in ISO form, then the data unchanged."""
    text = to_json(Event(name, data, at=AT))
    assert "\n" not in text
    assert json.loads(text) == {"event": name, "time": "2026-11-25T21:04:07.250000+00:00", **data}


def test_migration_started_without_progress_and_for_bookkeeping_blocks() -> None:
    """No resume note from statement 0; a block without a migration is named by its kind."""
    data = {"migration": None, "block": "replacements", "position": 1, "count": 2, "resume_after": 0}
    assert describe(Event("migration-started", data)) == "[1/2] (replacements)"
    done = {"migration": None, "block": "setup", "elapsed": 0.0132, "attempts": 1}
    assert describe(Event("migration-done", done)) == "  (setup): done in 0.01s, 1 attempt(s)"


def test_waiting_without_progress_names_the_blockers() -> None:
    """No index progress known: the line says who blocks, or that nobody was found."""
    data = {"migration": "shop.0002_book_isbn", "index": 2, "total": 2, "elapsed": 3.0, "progress": None}
    assert describe(Event("waiting", {**data, "blockers": [as_event(IDLE)]})) == (
        "  shop.0002_book_isbn statement 2/2: running 3.0s; pid 4121 deploy@10.0.0.5 (gunicorn), idle in "
        'transaction, transaction open 5.5s: SELECT "shop_book"."id" FROM "shop_book" FOR UPDATE'
    )
    assert describe(Event("waiting", {**data, "blockers": []})) == (
        "  shop.0002_book_isbn statement 2/2: running 3.0s; nobody found blocking it (the blocker may have finished)"
    )


def test_an_unknown_event_name_is_refused() -> None:
    """A name outside EventName is a programming error, caught when the event is made."""
    with pytest.raises(ValueError, match="unknown event name 'journal-created'"):
        Event("journal-created", {"table": "byhand_journal"})  # type: ignore[arg-type]


def test_event_time_defaults_to_now_in_utc() -> None:
    """Events are stamped with an aware UTC time when they are made."""
    before = datetime.now(timezone.utc)
    event = Event("preflight", {"text": "x"})
    assert event.at.tzinfo is timezone.utc
    assert before <= event.at <= datetime.now(timezone.utc)


def test_to_json_turns_other_values_into_text() -> None:
    """A value JSON cannot hold (a timedelta) becomes its str, not an error."""
    text = to_json(Event("preflight", {"text": "x", "lock_timeout": timedelta(seconds=2)}, at=AT))
    assert json.loads(text)["lock_timeout"] == "0:00:02"


# -- from a real run on SQLite ------------------------------------------------------------


def squash_then_review() -> Runbook:
    """Setup (skipped here), the squash bookkeeping, then shop.0003_review with a manual step."""
    return Runbook(
        header={"direction": "forwards", "vendor": "sqlite"},
        blocks=[
            sqlite_block("setup", Step(kind="setup", sql=MIGRATIONS_DDL)),
            sqlite_block(
                "replacements",
                record("0001_squashed_0002_book_isbn", now=SQLITE_NOW),
                records=[["shop", "0001_squashed_0002_book_isbn"]],
            ),
            sqlite_block(
                "migration",
                Step(
                    kind="schema",
                    sql='CREATE TABLE "shop_review" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "book_id" '
                    'bigint NOT NULL REFERENCES "shop_book" ("id") DEFERRABLE INITIALLY DEFERRED);',
                    op=0,
                ),
                Step(kind="manual", op=1, callable="shop.migrations.0003_review.fill_ratings"),
                record("0003_review", now=SQLITE_NOW),
                migration="shop.0003_review",
                requires=["shop.0001_squashed_0002_book_isbn"],
                records=[["shop", "0003_review"]],
            ),
        ],
    )


def applied_database(tmp_path: Path) -> Path:
    """An SQLite file where shop.0001 and shop.0002 (replaced by the squash) are applied."""
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute(MIGRATIONS_DDL)
        connection.execute('CREATE TABLE "shop_book" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT)')
        connection.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, '2026-11-01 10:00:00')",
            [("shop", "0001_initial"), ("shop", "0002_book_isbn")],
        )
    connection.close()
    return path


def run_on_sqlite(path: Path) -> list[Event]:
    """Apply squash_then_review() with a writer holding the lock at first: one lock timeout, then through."""
    target = get_target(parse_database_url(f"sqlite:///{path}"))
    target.connect()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    events: list[Event] = []

    def release(_seconds: float) -> None:
        """The injected sleep: the writer commits while byhand would wait."""
        if writer.in_transaction:
            writer.execute("COMMIT")

    try:
        apply_runbook(
            squash_then_review(),
            target,
            options=ApplyOptions(
                lock_timeout=timedelta(0), manual_steps_done=frozenset({"shop.0003_review:1"}), max_attempts=3
            ),
            on_event=events.append,
            sleep=release,
            rng=lambda: 0.0,
        )
    finally:
        target.close()
        writer.close()
    return events


def test_events_of_a_real_run_describe_and_serialise(tmp_path: Path) -> None:
    """Every event applying emits on SQLite has its template's keys and a JSON line."""
    events = run_on_sqlite(applied_database(tmp_path))
    names = {event.name for event in events}
    assert {"preflight", "run-started", "migration-skipped", "migration-started", "lock-timeout"} <= names
    assert {"statement-started", "statement-done", "manual-step", "migration-done", "run-finished"} <= names
    for event in events:
        assert event.name in _TEXT
        assert describe(event)
        loaded = json.loads(to_json(event))
        assert (loaded["event"], loaded["time"]) == (event.name, event.at.isoformat())
    assert describe(events[-1]).endswith("done in " + f"{events[-1].data['elapsed']:.2f}s: 2 applied, 1 skipped")


def test_statements_of_the_squash_bookkeeping_are_not_called_setup(tmp_path: Path) -> None:
    """The replacements block's statements read '(replacements)', as its start and end lines do."""
    events = run_on_sqlite(applied_database(tmp_path))
    started = next(e for e in events if e.name == "migration-started" and e.data["block"] == "replacements")
    after = events[events.index(started) + 1 :]
    done = next(e for e in after if e.name == "migration-done")
    statements = [e for e in after[: after.index(done)] if e.name.startswith("statement-")]
    summary = " ".join(record("0001_squashed_0002_book_isbn", now=SQLITE_NOW).sql.split())[:100]
    assert describe(started) == "[1/2] (replacements)"
    assert [describe(e) for e in statements] == [
        f"  (replacements) statement 1/1, attempt 1: {summary}",
        f"  (replacements) statement 1/1 done in {statements[1].data['elapsed']:.3f}s: {summary}",
    ]


def test_status_lists_the_setup_and_replacements_blocks_as_apply_names_them(tmp_path: Path) -> None:
    """byhand status: '(setup)' and '(replacements)' beside the migrations, pending until applied."""
    path = applied_database(tmp_path)

    def states() -> dict[str, str]:
        target = get_target(parse_database_url(f"sqlite:///{path}"))
        target.connect()
        try:
            report = runbook_status(squash_then_review(), target, journal_table="byhand_journal")
        finally:
            target.close()
        return {m.name: m.state for m in report.migrations}

    before = states()
    assert before["(setup)"] == "applied"  # django_migrations exists already
    assert before["(replacements)"] == "pending"
    run_on_sqlite(path)
    after = states()
    assert after["(replacements)"] == "applied"
    assert set(after.values()) == {"applied"}


def test_a_run_that_skips_the_setup_block_never_reports_setup_afterwards(tmp_path: Path) -> None:
    """django_migrations exists: after 'skipped', no line (a lock timeout, a statement) says '(setup)'."""
    events = run_on_sqlite(applied_database(tmp_path))
    lines = [describe(e) for e in events if e.name not in {"preflight", "migration-skipped"}]
    assert [line for line in lines if "(setup)" in line] == []


# -- as the console script prints them -------------------------------------------------------


def printed(events: list[Event], *, json_lines: bool = False) -> str:
    stream = io.StringIO()
    printer = EventPrinter(stream, json_lines=json_lines)
    for event in events:
        printer(event)
    return stream.getvalue()


def test_plain_output_prints_retries_and_done_lines_only() -> None:
    """Not a terminal: a first attempt is not announced (its done line says it), a retry is."""
    base = {"migration": "shop.0002_book_isbn", "index": 1, "total": 1, "summary": "ALTER TABLE ..."}
    events = [
        Event("statement-started", {**base, "attempt": 1}),
        Event("statement-started", {**base, "attempt": 2}),
        Event("statement-done", {**base, "elapsed": 0.5}),
    ]
    assert printed(events) == (
        "  shop.0002_book_isbn statement 1/1, attempt 2: ALTER TABLE ...\n"
        "  shop.0002_book_isbn statement 1/1 done in 0.500s: ALTER TABLE ...\n"
    )


def test_plain_output_prints_waiting_once_per_ten_seconds() -> None:
    """A long statement logs one 'running' line per 10 s, counted afresh for each statement."""
    base = {"migration": "shop.0004_title_idx", "index": 1, "total": 1, "progress": "41%", "blockers": []}
    start = {"migration": "shop.0004_title_idx", "index": 1, "total": 1, "attempt": 1, "summary": "CREATE INDEX"}
    events = [Event("waiting", {**base, "elapsed": float(s)}) for s in (1, 9, 10, 11, 19, 20, 21)]
    events += [Event("statement-started", start), Event("waiting", {**base, "elapsed": 10.0})]
    assert printed(events) == (
        "  shop.0004_title_idx statement 1/1: running 10.0s; 41%\n"
        "  shop.0004_title_idx statement 1/1: running 20.0s; 41%\n"
        "  shop.0004_title_idx statement 1/1: running 10.0s; 41%\n"
    )


def test_json_output_prints_every_event() -> None:
    """--json: one JSON object per event, waiting and first attempts included."""
    events = [Event(name, data, at=AT) for name, data, _line in CASES]
    lines = printed(events, json_lines=True).splitlines()
    assert [json.loads(line)["event"] for line in lines] == [name for name, _data, _line in CASES]
