"""byhand review and apply --refuse-risk on the real server of the vendor under test: a
populated table, its live size read, the risk changing with the thresholds, applied blocks
left out of the gate."""

from __future__ import annotations

import json
import re
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from builders import SQLITE_NOW, sqlite_block
from byhand.exceptions import RiskRefused
from byhand.operating.assessing import Thresholds
from byhand.runbook import Block, Comment, Control, Runbook, Step, has_control_character, sign_runbook
from byhand.vendors import get_vendor
from byhand.vendors.target import Target
from support import BIN, VENDOR, apply, byhand, database_url, fresh_database, make_shop_tables, target_for

pytestmark = pytest.mark.needs_server

ROWS = 3000
#: What the rehearsal observes for each statement, per vendor (the planning side writes it).
OBSERVED: dict[str, list[dict[str, Any] | None]] = {
    "postgresql": [
        {"tables": ["shop_book"], "locks": [{"table": "shop_book", "mode": "AccessExclusiveLock"}], "scan": False},
        {"tables": ["shop_book"], "locks": [{"table": "shop_book", "mode": "RowExclusiveLock"}], "scan": True},
        {"tables": ["shop_book"], "locks": [{"table": "shop_book", "mode": "ShareLock"}], "scan": True},
    ],
    "mysql": [
        {"tables": ["shop_book"], "algorithm": "INSTANT", "lock": "NONE", "scan": False},
        {"tables": ["shop_book"], "algorithm": None, "lock": None, "scan": True},
        {"tables": ["shop_book"], "algorithm": "INPLACE", "lock": "NONE", "scan": True},
    ],
    "sqlite": [None, {"tables": ["shop_book"], "scan": True}, {"tables": ["shop_book"], "scan": True}],
}


def record(name: str) -> Step:
    q = get_vendor(VENDOR).quote_name
    now = {"sqlite": SQLITE_NOW, "mysql": "CURRENT_TIMESTAMP(6)"}.get(VENDOR, "NOW()")
    return Step(
        kind="record",
        sql=f"INSERT INTO {q('django_migrations')} ({q('app')}, {q('name')}, {q('applied')}) "
        f"VALUES ('shop', '{name}', {now});",
    )


def block(migration: str, requires: str, *steps: Step) -> Block:
    """A migration block as the vendor's renderer lays it out (atomic where DDL rolls back)."""
    name = migration.split(".")[1]
    fields: dict[str, Any] = {"migration": migration, "requires": [requires], "records": [["shop", name]]}
    if VENDOR == "sqlite":
        return sqlite_block("migration", *steps, record(name), **fields)
    if VENDOR == "mysql":
        return Block(kind="migration", atomic=True, items=[*steps, record(name)], **fields)
    return Block(
        kind="migration",
        atomic=True,
        items=[Control("BEGIN;"), Comment("-- Add field isbn to book"), *steps, record(name), Control("COMMIT;")],
        **fields,
    )


def runbook() -> Runbook:
    """shop.0002 adds a column and backfills it; shop.0003 builds an index (in a transaction:
    not CONCURRENTLY) on a value that holds markup."""
    q = get_vendor(VENDOR).quote_name
    add, backfill, index = OBSERVED[VENDOR]
    isbn = block(
        "shop.0002_book_isbn",
        "shop.0001_initial",
        Step(
            kind="schema",
            sql=f"ALTER TABLE {q('shop_book')} ADD COLUMN {q('isbn')} varchar(13) NULL;",
            op=0,
            observed=add,
        ),
        Step(
            kind="schema",
            sql=f"UPDATE {q('shop_book')} SET {q('isbn')} = '<script>x</script>';",
            op=1,
            observed=backfill,
        ),
    )
    title = block(
        "shop.0003_title_idx",
        "shop.0002_book_isbn",
        Step(
            kind="schema",
            sql=f"CREATE INDEX {q('shop_book_t')} ON {q('shop_book')} ({q('title')});",
            op=0,
            observed=index,
        ),
    )
    return Runbook(header={"direction": "forwards", "vendor": VENDOR}, blocks=[isbn, title])


@pytest.fixture
def books(tmp_path: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """A database with shop_book of ROWS rows (statistics up to date) and shop.0001 recorded;
    the runbook written beside it."""
    vendor = get_vendor(VENDOR)
    with fresh_database() as settings:
        target = target_for(settings)
        try:
            make_shop_tables(target)
            target.execute(record("0001_initial").sql)
            values = ", ".join(f"('book {n}')" for n in range(ROWS))
            target.execute(
                f"INSERT INTO {vendor.quote_name('shop_book')} ({vendor.quote_name('title')}) VALUES {values}"
            )
            if VENDOR != "sqlite":
                target.execute(f"ANALYZE {'TABLE ' if VENDOR == 'mysql' else ''}{vendor.quote_name('shop_book')}")
        finally:
            target.close()
        path = tmp_path / "runbook.sql"
        path.write_text(runbook().render())
        yield settings, path


def review(settings: dict[str, Any], path: Path, *args: str) -> dict[str, Any]:
    done = byhand("review", str(path), "--database-url", database_url(settings), "--json", *args)
    assert (done.returncode, done.stderr) == (0, "")
    return dict(json.loads(done.stdout))


#: Per vendor: the risk of statements 1, 2 of shop.0002 and 1 of shop.0003 with the
#: thresholds lowered under the table's size, and at their defaults.
EXPECTED = {
    "postgresql": (["medium", "high", "high"], ["low", "medium", "medium"]),
    "mysql": (["low", "high", "medium"], ["low", "medium", "low"]),
    "sqlite": (["low", "high", "high"], ["low", "medium", "medium"]),
}


def test_review_reads_the_live_size_and_the_risk_follows_the_thresholds(books: tuple[dict[str, Any], Path]) -> None:
    """The populated table's live estimate and size; with --big-rows under it the backfill
    is high, at the defaults medium. Exit 0 whatever the risk."""
    settings, path = books
    lowered = review(settings, path, "--big-rows", "1000")
    schema = [s for s in lowered["statements"] if s["kind"] == "schema"]
    assert [(s["migration"], s["index"]) for s in schema] == [
        ("shop.0002_book_isbn", 1),
        ("shop.0002_book_isbn", 2),
        ("shop.0003_title_idx", 1),
    ]
    backfill = schema[1]
    assert backfill["tables"] == ["shop_book"] and backfill["blocks"] in ("writes", "reads and writes")
    assert ROWS * 0.9 <= backfill["rows"] <= ROWS * 1.1, backfill["rows"]
    assert backfill["bytes"] > 10_000
    assert (backfill["scan"], backfill["rewrite"], backfill["applied"]) == (True, False, False)
    assert backfill["algorithm"] is None
    assert backfill["sql"].endswith("'<script>x</script>';")
    lowered_risks, default_risks = EXPECTED[VENDOR]
    assert [s["risk"] for s in schema] == lowered_risks
    assert [s["risk"] for s in review(settings, path)["statements"] if s["kind"] == "schema"] == default_risks
    assert lowered["thresholds"] == {"big_rows": 1000, "big_bytes": 100 * 1024 * 1024}
    assert set(backfill) >= {"migration", "index", "sql", "tables", "locks", "blocks", "rewrite", "scan", "algorithm"}
    assert set(backfill) >= {"rows", "bytes", "risk", "reasons", "squawk", "applied", "safer"}
    bookkeeping = [s for s in lowered["statements"] if s["kind"] == "record"]
    assert bookkeeping and {(s["blocks"], s["risk"]) for s in bookkeeping} == {("none", "low")}
    if VENDOR == "postgresql":  # squawk's rules, on the statement they concern
        assert schema[2]["squawk"] == ["require-concurrent-index-creation"]
        assert schema[2]["safer"].startswith("CREATE INDEX CONCURRENTLY")
    else:
        assert lowered["squawk"] == f"squawk reads PostgreSQL only: not run for {VENDOR}"
    target = target_for(settings)
    try:
        assert not target.table_exists("byhand_journal")  # review reads only
    finally:
        target.close()


def test_review_says_which_blocks_are_applied(books: tuple[dict[str, Any], Path]) -> None:
    """shop.0002 recorded: its statements say applied, the summary counts only what is left."""
    settings, path = books
    target = target_for(settings)
    try:
        target.execute(record("0002_book_isbn").sql)
    finally:
        target.close()
    done = byhand("review", str(path), "--database-url", database_url(settings), "--big-rows", "1000")
    assert done.returncode == 0, done.stderr
    assert "shop.0002_book_isbn  (applied, atomic)" in done.stdout
    index_risk = EXPECTED[VENDOR][0][2]
    assert (
        f"risk of the statements still to run: {int(index_risk == 'high')} high, {int(index_risk == 'medium')} medium"
        in done.stdout
    )
    parsed = review(settings, path, "--big-rows", "1000")
    assert [s["applied"] for s in parsed["statements"]] == [True, True, True, False, False]


def test_review_of_a_database_it_cannot_reach_exits_2(books: tuple[dict[str, Any], Path]) -> None:
    """A wrong database URL: an error, exit 2."""
    _, path = books
    url = "sqlite:////nonexistent/db.sqlite3" if VENDOR == "sqlite" else database_url({"NAME": "byhand_no_such_db"})
    done = byhand("review", str(path), "--database-url", url)
    assert done.returncode == 2 and done.stderr.startswith("byhand: "), done.stderr


def masked(text: str) -> str:
    """Sizes differ by server version: the table's line keeps its shape."""
    return re.sub(r"\([\d,?]+ rows, [\d.]+ \w+\)", "(<size>)", text)


def test_apply_refuses_risk_before_any_change(books: tuple[dict[str, Any], Path]) -> None:
    """--refuse-risk high with --big-rows under the table's size: refused, every high statement
    named with its reasons, nothing changed; the same with --dry-run."""
    settings, path = books
    thresholds = Thresholds(big_rows=1000)
    for dry_run in (False, True):
        with pytest.raises(RiskRefused) as refused:
            apply(path, settings, refuse_risk="high", thresholds=thresholds, dry_run=dry_run)
        high = sum(risk == "high" for risk in EXPECTED[VENDOR][0])
        assert str(refused.value).startswith(
            f"preflight refused the runbook (nothing was changed): {high} statement(s) that would run are at high "
            "risk or above (--refuse-risk high; big table: at least 1,000 rows or 100 MB):\n"
        )
        assert len(refused.value.problems) == high
    message = masked(str(refused.value))
    backfill = {
        "postgresql": 'shop.0002_book_isbn statement 2/3 (UPDATE "shop_book" SET "isbn" = \'<script>x</script>\';): '
        "high risk: holds AccessExclusiveLock on shop_book, taken by statement 1, until COMMIT; locks the rows it "
        "changes until its transaction ends; reads every row; blocks reads and writes on a big table: shop_book "
        "(<size>)",
        "mysql": "shop.0002_book_isbn statement 2/3 (UPDATE `shop_book` SET `isbn` = '<script>x</script>';): high "
        "risk: locks the rows it changes until its transaction ends; reads every row; blocks writes on a big table: "
        "shop_book (<size>)",
        "sqlite": 'shop.0002_book_isbn statement 2/3 (UPDATE "shop_book" SET "isbn" = \'<script>x</script>\';): '
        "high risk: SQLite: every other writer of the database waits until its transaction ends; locks the rows it "
        "changes until its transaction ends; reads every row; blocks writes on a big table: shop_book (<size>)",
    }[VENDOR]
    assert f"\n  {backfill}\n" in message, message
    assert message.endswith(
        "See the whole review with 'byhand review RUNBOOK --database-url URL'. Run it in a quiet window without "
        "--refuse-risk (or with a higher level), or write the safer form into the migrations and generate the "
        "runbook again."
    )
    target = target_for(settings)
    try:
        assert not target.table_exists("byhand_journal")  # nothing ran, nothing journaled
    finally:
        target.close()


def test_the_gate_leaves_out_applied_blocks_and_passes_under_the_level(books: tuple[dict[str, Any], Path]) -> None:
    """At the default sizes nothing is high: the dry run passes and says so. With shop.0002
    recorded, only shop.0003's index counts."""
    settings, path = books
    events, _ = apply(path, settings, refuse_risk="high", dry_run=True)
    said = [e.data["text"] for e in events if e.name == "preflight"]
    assert said[-1] == (
        "risk gate (--refuse-risk high): no statement that would run is at high risk or above (big table: at "
        "least 100,000 rows or 100 MB)"
    )
    target = target_for(settings)
    try:
        target.execute(record("0002_book_isbn").sql)
    finally:
        target.close()
    index_risk = EXPECTED[VENDOR][0][2]
    if index_risk == "high":
        with pytest.raises(RiskRefused) as refused:
            apply(path, settings, refuse_risk="high", thresholds=Thresholds(big_rows=1000), dry_run=True)
        assert refused.value.problems[0].startswith("shop.0003_title_idx statement 1/2 (CREATE INDEX")
        assert len(refused.value.problems) == 1
    else:
        apply(path, settings, refuse_risk="high", thresholds=Thresholds(big_rows=1000), dry_run=True)
        with pytest.raises(RiskRefused) as refused:
            apply(path, settings, refuse_risk="medium", thresholds=Thresholds(big_rows=1000), dry_run=True)
        assert [p.split(" (")[0] for p in refused.value.problems] == ["shop.0003_title_idx statement 1/2"]


def test_apply_refuse_risk_on_the_command_line_exits_2(books: tuple[dict[str, Any], Path]) -> None:
    """The console script: --refuse-risk medium --big-rows 1000, exit 2, the message on stderr."""
    settings, path = books
    done = byhand(
        "apply", str(path), "--database-url", database_url(settings), "--refuse-risk", "medium", "--big-rows", "1000"
    )
    assert done.returncode == 2
    assert (
        "statement(s) that would run are at medium risk or above (--refuse-risk medium; big table: at least 1,000"
        in done.stderr
    )


def pixels(png: bytes, *, rows: int) -> set[tuple[int, ...]]:
    """The distinct colours of the first ``rows`` rows of an 8-bit RGB or RGBA PNG (what
    Chromium writes), read with zlib alone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, data, width, height, channels = 8, b"", 0, 0, 0
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, body = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            data += body
        offset += 12 + length
    raw, stride, previous = zlib.decompress(data), width * channels, bytearray(width * channels)
    colours: set[tuple[int, ...]] = set()
    for row in range(min(rows, height)):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                near = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))[2]
                line[i] = (line[i] + near) & 0xFF
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return colours


def test_the_html_page_escapes_the_sql_and_renders_risky_rows_in_colour(
    books: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """--html: one page, no script, the statement's <script> escaped; headless Chromium draws
    it (a screenshot with many colours, the high row's red among them)."""
    settings, path = books
    page = tmp_path / "review.html"
    done = byhand(
        "review", str(path), "--database-url", database_url(settings), "--big-rows", "1000", "--html", str(page)
    )
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert "<script" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert not re.search(r"(src|href)=", text)  # nothing fetched
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: scripts/system.sh installs it"
    shot = tmp_path / "review.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    colours = pixels(shot.read_bytes(), rows=450)  # the title, the facts, the first table
    assert len(colours) > 50, len(colours)
    assert (0xC6, 0x28, 0x28) in colours  # tr.high td.risk


def test_django_hazards_in_the_example_runbook(forwards: Path) -> None:
    """The example's runbook as byhand sql writes it, reviewed on an empty database: shop.0008's
    BigAutoField key and the foreign keys that follow it, shop.0005's RenameModel, Django's
    AlterField on a foreign key; every table new, so every statement low."""
    with fresh_database() as settings:
        if VENDOR == "sqlite":
            Path(settings["NAME"]).touch()
        found = review(settings, forwards, "--no-squawk")
    hazards = {(s["migration"], h["name"], h["tables"][0]) for s in found["statements"] for h in s["hazards"]}
    expected = {
        ("shop.0008_author_bigautofield", "bigint-key", "shop_author"),
        ("shop.0005_rename_publisher", "rename-model", "shop_book"),
    }
    if VENDOR != "sqlite":  # SQLite remakes shop_author alone; the servers alter the columns that follow it
        expected |= {
            ("shop.0008_author_bigautofield", "bigint-key", "shop_book"),
            ("shop.0008_author_bigautofield", "bigint-key", "reviews_review"),
            ("shop.0005_rename_publisher", "fk-recreated", "shop_book"),
        }
    assert hazards >= expected, sorted(hazards)
    assert {s["risk"] for s in found["statements"]} == {"low"}


def _waiting_for_django_migrations(watcher: Target) -> bool:
    """Whether a ``byhand review`` session waits for a lock on django_migrations."""
    if VENDOR == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'byhand review%%' "
            "AND wait_event_type = 'Lock'"
        )
    else:
        query = (
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%%' "
            "AND INFO LIKE '%%django_migrations%%'"
        )
    return bool(watcher.execute(query)[0][0])


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite's readers never wait for a lock (test_cli: Ctrl-C on SQLite)")
def test_ctrl_c_while_review_waits_for_a_lock_is_one_line_and_exit_130(books: tuple[dict[str, Any], Path]) -> None:
    """Ctrl-C while review waits for django_migrations, which another session holds locked:
    one line, no traceback, apply's exit status for an interruption (130)."""
    settings, path = books
    holder, watcher = target_for(settings), target_for(settings)
    q = holder.quote_name
    try:
        if VENDOR == "postgresql":
            holder.begin()
            holder.execute(f"LOCK TABLE {q('django_migrations')} IN ACCESS EXCLUSIVE MODE")
        else:
            holder.execute(f"LOCK TABLES {q('django_migrations')} WRITE")
        ignored = signal.signal(signal.SIGINT, signal.default_int_handler)  # see test_cli's Ctrl-C test
        try:
            process = subprocess.Popen(
                [str(BIN / "byhand"), "review", str(path), "--database-url", database_url(settings)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        finally:
            signal.signal(signal.SIGINT, ignored)
        deadline = time.monotonic() + 30
        while not _waiting_for_django_migrations(watcher) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _waiting_for_django_migrations(watcher), "review never waited for the lock"
        process.send_signal(signal.SIGINT)  # pending before the lock goes: its handler runs first
        # mysqlclient waits in C, where Python's handler runs only once the query is back.
        holder.execute("ROLLBACK" if VENDOR == "postgresql" else "UNLOCK TABLES")
        stdout, stderr = process.communicate(timeout=30)
    finally:
        holder.close()
        watcher.close()
    assert (process.returncode, stdout) == (130, ""), stderr
    assert stderr == "byhand: review interrupted (Ctrl-C); it only reads: nothing was changed.\n"


def test_the_risk_gate_escapes_what_it_quotes_from_the_runbook(books: tuple[dict[str, Any], Path]) -> None:
    """apply --refuse-risk quotes each statement's first line and its reasons: a terminal
    escape sequence in the SQL comes out escaped, as review shows it."""
    settings, path = books
    edited = runbook()
    for block in edited.blocks:
        block.items = [
            replace(item, sql=item.sql.replace("<script>x</script>", "\x1b[2J\x1b]0;owned\x07"))
            if isinstance(item, Step)
            else item
            for item in block.items
        ]
    path.write_text(edited.render())
    with pytest.raises(RiskRefused) as refused:
        apply(path, settings, refuse_risk="medium", thresholds=Thresholds(big_rows=1000), dry_run=True)
    message = str(refused.value)
    assert "'\\x1b[2J\\x1b]0;owned\\x07'" in message
    assert not has_control_character(message.replace("\n", ""))


@pytest.mark.skipif(VENDOR == "sqlite", reason="SQLite's statements block writers whatever their text says")
def test_statements_not_observed_are_judged_by_what_their_text_locks(
    books: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """A runbook written without observations: PostgreSQL's CREATE INDEX takes a ShareLock
    (high on the big table), its DROP INDEX an AccessExclusiveLock on the table the database
    says the index is on; MariaDB's ALGORITHM=COPY rewrites the table while writes wait."""
    settings, _ = books
    q = get_vendor(VENDOR).quote_name
    if VENDOR == "postgresql":
        sqls = [
            f"CREATE INDEX {q('shop_book_t')} ON {q('shop_book')} ({q('title')});",
            f"DROP INDEX {q('shop_book_i')};",
        ]
    else:
        sqls = [f"ALTER TABLE {q('shop_book')} ADD COLUMN {q('n')} int NULL, ALGORITHM=COPY;"]
    steps = [Step(kind="schema", sql=sql, op=n) for n, sql in enumerate(sqls)]
    path = tmp_path / "unobserved.sql"
    path.write_text(
        Runbook(
            header={"direction": "forwards", "vendor": VENDOR},
            blocks=[block("shop.0004_x", "shop.0001_initial", *steps)],
        ).render()
    )
    found = [
        s for s in review(settings, path, "--big-rows", "1000", "--no-squawk")["statements"] if s["kind"] == "schema"
    ]
    first = found[0]
    assert (first["observed"], first["risk"], first["tables"]) == (False, "high", ["shop_book"])
    if VENDOR == "postgresql":
        assert "takes ShareLock on shop_book (from its text)" in first["reasons"]
        dropped = found[1]
        assert (dropped["tables"], dropped["blocks"], dropped["risk"]) == (["shop_book"], "reads and writes", "medium")
        assert "takes AccessExclusiveLock on shop_book (from its text)" in dropped["reasons"]
    else:
        assert (first["blocks"], first["rewrites"], first["algorithm"]) == ("writes", ["shop_book"], "COPY")
        assert "ALGORITHM=COPY, LOCK=SHARED (from its text)" in first["reasons"]


def test_a_re_signed_runbook_with_forged_observations_is_judged_by_its_text(
    books: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """Someone edited "locks": [] and "scan": false onto the index build (PostgreSQL; MariaDB:
    "algorithm": "INSTANT", "lock": "NONE" onto an ALGORITHM=COPY) and re-signed: review says
    so first (terminal, JSON, page) and judges the statement at least by its text."""
    settings, _ = books
    q = get_vendor(VENDOR).quote_name
    if VENDOR == "mysql":
        sql = f"ALTER TABLE {q('shop_book')} ADD COLUMN {q('n')} int NULL, ALGORITHM=COPY;"
        forged: dict[str, Any] = {"tables": ["shop_book"], "algorithm": "INSTANT", "lock": "NONE", "scan": False}
    else:
        sql = f"CREATE INDEX {q('shop_book_t')} ON {q('shop_book')} ({q('title')});"
        forged = {"tables": ["shop_book"], "locks": [], "rewrites": [], "scan": False}
    edited = Runbook(
        header={"direction": "forwards", "vendor": VENDOR},
        blocks=[block("shop.0004_x", "shop.0001_initial", Step(kind="schema", sql=sql, op=0, observed=forged))],
    )
    original = tmp_path / "original.sql"
    original.write_text(edited.render())
    path = tmp_path / "signed.sql"
    # The forged marker edited by hand (here a space more), then re-signed as `byhand sign` does.
    signed, _, _ = sign_runbook(
        original.read_text().replace('"scan": false', '"scan": false ', 1), by="mallory", at="t"
    )
    path.write_text(signed)
    found = review(settings, path, "--big-rows", "1000", "--no-squawk")
    assert [s["by"] for s in found["signed"]] == ["mallory"]
    statement = found["statements"][0]
    assert (statement["observed"], statement["risk"]) == (True, "high"), statement["reasons"]
    said = "its observations are not byhand's own; each statement is judged at least by what its text says"
    done = byhand("review", str(path), "--database-url", database_url(settings), "--big-rows", "1000", "--no-squawk")
    assert done.stdout.splitlines()[1].startswith("  RE-SIGNED by mallory at t (was sha256:")
    assert done.stdout.splitlines()[1].endswith(said)
    page = tmp_path / "review.html"
    byhand("review", str(path), "--database-url", database_url(settings), "--no-squawk", "--html", str(page))
    assert said.replace("'", "&#x27;") in page.read_text()


def _one_step(path: Path, step: Step) -> Path:
    """A runbook of one migration block holding ``step``, written to ``path``."""
    runbook = Runbook(
        header={"direction": "forwards", "vendor": VENDOR}, blocks=[block("shop.0004_x", "shop.0001_initial", step)]
    )
    path.write_text(runbook.render())
    return path


@pytest.mark.skipif(VENDOR != "postgresql", reason="schemas other than the connection's are PostgreSQL's")
def test_a_table_of_another_schema_has_its_size(books: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    """The rehearsal names another schema's table "schema.table": its size is found; a table
    that is not there (in a schema that is, or one that is not) stays "size unknown"."""
    settings, _ = books
    target = target_for(settings)
    try:
        target.execute('CREATE SCHEMA "other"')
        target.execute('CREATE TABLE "other"."big" AS SELECT generate_series(1, 2000) AS "id"')
        target.execute('ANALYZE "other"."big"')
    finally:
        target.close()
    tables = ["other.missing", "other.big", "nowhere.big"]
    observed = {"tables": tables, "locks": [{"table": t, "mode": "AccessExclusiveLock"} for t in tables], "scan": True}
    step = Step(kind="schema", sql='UPDATE "other"."big" SET "id" = "id";', op=0, observed=observed)
    statement = review(settings, _one_step(tmp_path / "other.sql", step), "--no-squawk")["statements"][0]
    assert list(statement["sizes"]) == ["other.big"]
    assert statement["sizes"]["other.big"]["rows"] == 2000 and statement["sizes"]["other.big"]["bytes"] > 0
    assert "size unknown: other.missing" in statement["reasons"], statement["reasons"]  # the table it reads


@pytest.mark.skipif(VENDOR != "postgresql", reason="partitioned tables are PostgreSQL's here")
def test_a_partitioned_table_s_size_is_its_partitions(books: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    """A partitioned table holds nothing itself (pg_total_relation_size 0, reltuples -1 as
    autovacuum never analyses it): its size is its partitions'."""
    settings, _ = books
    target = target_for(settings)
    try:
        target.execute('CREATE TABLE "parted" ("id" int) PARTITION BY RANGE ("id")')
        for number, (low, high) in enumerate([(0, 1000), (1000, 3000)]):
            target.execute(f'CREATE TABLE "parted_{number}" PARTITION OF "parted" FOR VALUES FROM ({low}) TO ({high})')
            target.execute(f'INSERT INTO "parted" SELECT generate_series({low}, {high - 1})')
            target.execute(f'ANALYZE "parted_{number}"')
    finally:
        target.close()
    observed = {"tables": ["parted"], "locks": [{"table": "parted", "mode": "ShareLock"}], "scan": True}
    step = Step(kind="schema", sql='CREATE INDEX "parted_id" ON "parted" ("id");', op=0, observed=observed)
    path = _one_step(tmp_path / "parted.sql", step)
    statement = review(settings, path, "--no-squawk", "--big-rows", "2500")["statements"][0]
    assert statement["rows"] == 3000 and statement["bytes"] > 2 * 8192, statement["sizes"]
    assert statement["risk"] == "high", statement["reasons"]


def test_html_naming_the_runbook_itself_is_refused(books: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    """--html naming the runbook (the same path, another path to it, a symbolic or hard link
    to it): one line, exit 2, and the runbook is left as it was, nothing else written."""
    settings, path = books
    before = path.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.sql").symlink_to(path)
    (tmp_path / "hard.sql").hardlink_to(path)
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    for page in (path, tmp_path / "sub" / ".." / path.name, tmp_path / "link.sql", tmp_path / "hard.sql"):
        done = byhand("review", str(path), "--database-url", database_url(settings), "--html", str(page))
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr == (
            f"byhand: --html {page} is the runbook {path}: writing the page would replace it; "
            "name another file. Nothing was written.\n"
        )
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.rglob("*")) == listing


@pytest.mark.skipif(VENDOR != "postgresql", reason="pg_total_relation_size's lock is PostgreSQL's")
def test_a_table_another_session_holds_locked_has_its_size_estimated(books: tuple[dict[str, Any], Path]) -> None:
    """Another session holds ACCESS EXCLUSIVE on shop_book (a long migration): review still
    reads, at once; shop_book's bytes are pg_class's estimate from relpages, and it says so."""
    settings, path = books
    holder = target_for(settings)
    q = holder.quote_name
    try:
        unlocked = review(settings, path, "--no-squawk")
        holder.begin()
        holder.execute(f"LOCK TABLE {q('shop_book')} IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        locked = review(settings, path, "--no-squawk")
        done = byhand("review", str(path), "--database-url", database_url(settings), "--no-squawk")
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 0, done.stderr
    assert elapsed < 10, elapsed
    assert (unlocked["estimated_sizes"], locked["estimated_sizes"]) == ([], ["shop_book"])
    exact, estimate = (r["statements"][1]["sizes"]["shop_book"] for r in (unlocked, locked))
    assert estimate["rows"] == exact["rows"]
    assert 0.5 * exact["bytes"] <= estimate["bytes"] <= 1.5 * exact["bytes"], (estimate, exact)
    assert (
        "  bytes estimated, as 'sizes read live' says (locked by another session, so not read live): shop_book"
        in done.stdout.splitlines()
    ), done.stdout
