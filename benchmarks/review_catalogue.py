#!/usr/bin/env python
"""The proof catalogue: what byhand's runbook says each statement does, against what it really does.

    python benchmarks/review_catalogue.py [--vendor postgresql|mariadb|both] [--entries SPEC]
                                          [--rows 1000000] [--markdown FILE] [--runbooks DIR]
                                          [--postgres-url URL] [--mysql-url URL] [--keep]

The project in benchmarks/catalogue/ has one app whose migrations are the catalogue: 0001
creates author, book (-> author) and loan (-> book), then each later migration holds one
operation of another kind (40 entries). Per vendor, the database named in the URL is
created afresh, migrated to 0001 and its three tables filled with --rows rows each, once.
Then, for each entry in order (the database is always in the state just before it; entries
left out by --entries are applied with ``manage.py migrate``):

1. ``manage.py byhand sql catalogue ENTRY -o FILE`` writes the runbook of that one migration
   against the populated database; each schema step's marker may say under "observed" what
   the statement did when rehearsed on the scratch copy (the prediction);
2. ``manage.py lintmigrations catalogue ENTRY`` (django-migration-linter) and, on
   PostgreSQL, ``squawk --reporter json FILE`` give their verdicts on the same migration;
3. the runbook's statements run on the populated tables as ``byhand apply`` would run them
   (its BEGIN and COMMIT included, its bookkeeping row too), watched from other sessions
   (catalogue_observing.py says how): PostgreSQL locks, rewrites, full reads and whether a
   concurrent SELECT / INSERT is blocked; MariaDB's cheapest ALGORITHM and weakest LOCK,
   rebuilds and whether a concurrent SELECT / INSERT is blocked while it runs;
4. prediction and observation are compared field by field; a statement agrees when every
   field both sides have agrees.

The report (stdout, and --markdown FILE) is a table per vendor, one row per statement, and
a summary: entries, entries whose statements all agree, and each disagreement.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import BenchmarkError, Database, describe_context, manage_env, run_timed, say
from catalogue_observing import PG_CONFLICTS, MariadbObserver, Observation, PostgresObserver

from byhand.runbook import Comment, Control, Read, Step, parse_runbook

__all__ = ["main"]

PROJECT = Path(__file__).resolve().parent / "catalogue"
MIGRATIONS = PROJECT / "catalogue" / "migrations"
APP = "catalogue"
URLS = {
    "postgresql": "postgres://postgres@127.0.0.1:5432/byhand_catalogue",
    "mysql": "mysql://root@127.0.0.1:3306/byhand_catalogue",
}
_FILL = {
    "postgresql": [
        "SET session_replication_role = replica",  # no foreign-key triggers while filling
        "INSERT INTO catalogue_author (id, name, born, email, code) SELECT g, 'author ' || g, 1900 + g % 120,"
        " 'author' || g || '@example.com', 'code-' || g FROM generate_series(1, {rows}) g",
        "INSERT INTO catalogue_book (id, title, pages, rating, isbn, price, author_id) SELECT g, 'title ' || g,"
        " 100 + g % 900, g % 6, 'isbn-' || g, (g % 100000) / 100.0, g FROM generate_series(1, {rows}) g",
        "INSERT INTO catalogue_loan (id, day, note, book_id) SELECT g, g % 365, 'note ' || g, g"
        " FROM generate_series(1, {rows}) g",
        "SET session_replication_role = DEFAULT",
        "SELECT setval(pg_get_serial_sequence('catalogue_author', 'id'), {rows})",
        "SELECT setval(pg_get_serial_sequence('catalogue_book', 'id'), {rows})",
        "SELECT setval(pg_get_serial_sequence('catalogue_loan', 'id'), {rows})",
        "VACUUM ANALYZE catalogue_author",
        "VACUUM ANALYZE catalogue_book",
        "VACUUM ANALYZE catalogue_loan",
    ],
    "mysql": [
        "SET SESSION foreign_key_checks = 0, unique_checks = 0",
        "INSERT INTO catalogue_author (id, name, born, email, code) SELECT seq, CONCAT('author ', seq),"
        " 1900 + seq % 120, CONCAT('author', seq, '@example.com'), CONCAT('code-', seq) FROM seq_1_to_{rows}",
        "INSERT INTO catalogue_book (id, title, pages, rating, isbn, price, author_id) SELECT seq,"
        " CONCAT('title ', seq), 100 + seq % 900, seq % 6, CONCAT('isbn-', seq), (seq % 100000) / 100.0, seq"
        " FROM seq_1_to_{rows}",
        "INSERT INTO catalogue_loan (id, day, note, book_id) SELECT seq, seq % 365, CONCAT('note ', seq), seq"
        " FROM seq_1_to_{rows}",
        "SET SESSION foreign_key_checks = 1, unique_checks = 1",
        "ANALYZE TABLE catalogue_author, catalogue_book, catalogue_loan",
    ],
}
_TIMEOUT_RULES = {"require-lock-timeout", "require-statement-timeout"}


@dataclass
class Row:
    """One schema statement of one entry: the prediction, the observation, the verdicts."""

    entry: str
    index: int
    predicted: dict[str, Any] | None
    observation: Observation
    fields: list[tuple[str, str, str, bool | None]] = field(default_factory=list)  # name, predicted, observed, agree
    squawk: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool | None:
        if self.predicted is None:
            return None
        if self.observation.error:
            return False
        return all(agree is not False for _name, _p, _o, agree in self.fields)


@dataclass
class Entry:
    name: str
    rows: list[Row] = field(default_factory=list)
    linter: str = ""
    note: str = ""
    seconds: float = 0.0

    @property
    def agree(self) -> bool | None:
        verdicts = [row.agree for row in self.rows]
        if not verdicts or any(verdict is None for verdict in verdicts):
            return None
        return all(verdicts)


@dataclass
class VendorRun:
    vendor: str
    server: str
    rows: int
    fill_seconds: float
    entries: list[Entry] = field(default_factory=list)
    stopped: str = ""


# --- the database and the project ---------------------------------------------------------


def migration_names() -> list[str]:
    return sorted(path.stem for path in MIGRATIONS.glob("0*.py"))


def select_entries(spec: str | None, names: list[str]) -> list[str]:
    """Entries from "2-10,addindex,renamemodel": migration numbers, ranges, or parts of names."""
    entries = names[1:]
    if not spec:
        return entries
    chosen: set[str] = set()
    for raw in spec.split(","):
        part = raw.strip()
        if re.fullmatch(r"\d+(-\d+)?", part):
            low, _, high = part.partition("-")
            numbers = range(int(low), int(high or low) + 1)
            chosen |= {name for name in entries if int(name[:4]) in numbers}
        else:
            found = {name for name in entries if part in name}
            if not found:
                raise SystemExit(f"--entries: no entry matches {part!r}")
            chosen |= found
    return [name for name in entries if name in chosen]


class Project:
    """manage.py of benchmarks/catalogue/ on one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.env = manage_env(database.url)

    def manage(self, *args: str, check: bool = True) -> Any:
        run = run_timed([sys.executable, "manage.py", *args], cwd=PROJECT, env=self.env, timeout=1800)
        if check and not run.ok:
            raise BenchmarkError(f"manage.py {' '.join(args)} failed:\n{run.tail()}")
        return run

    def prepare(self, rows: int) -> float:
        self.database.recreate()
        self.manage("migrate", APP, "0001", "-v0")
        start = time.perf_counter()
        connection = self.database.connect()
        try:
            cursor = connection.cursor()
            for sql in _FILL[self.database.vendor]:
                cursor.execute(sql.format(rows=rows))
                if cursor.description:
                    cursor.fetchall()
        finally:
            connection.close()
        return time.perf_counter() - start

    def lint(self, name: str) -> str:
        """django-migration-linter's verdict on one migration, with its messages."""
        run = self.manage("lintmigrations", APP, name, "--no-cache", check=False)
        verdict, messages = "?", []
        for line in run.stdout.splitlines():
            match = re.match(r"\(\w+, \w+\)\.\.\. (\w+)", line)
            if match:
                verdict = match.group(1)
            elif line.startswith("\t"):
                messages.append(line.strip())
        if verdict == "?":
            last = [line for line in (run.stderr or run.stdout).splitlines() if line.strip()][-1:]
            return "failed: " + (last[0].strip() if last else f"exit status {run.returncode}")
        return verdict + (": " + "; ".join(messages) if messages else "")


def squawk_rules(runbook: Path, text: str) -> dict[int, list[str]]:
    """squawk's rules per schema step (by the step's position among the runbook's steps)."""
    squawk = Path(sys.executable).parent / "squawk"
    if not squawk.exists():
        found = shutil.which("squawk")
        if found is None:
            return {}
        squawk = Path(found)
    done = subprocess.run(
        [str(squawk), "--reporter", "json", "--pg-version", "15", str(runbook)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        violations = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return {-1: ["squawk failed: " + (done.stderr or done.stdout).strip()[:80]]}
    spans: list[tuple[int, int]] = []  # 0-based line ranges of each step's SQL
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if line.startswith('-- byhand: {"step"'):
            count = json.loads(line[len("-- byhand: ") :]).get("lines", 0)
            spans.append((number + 1, number + count))
    rules: dict[int, list[str]] = {}
    for violation in violations:
        line = violation.get("line", -1)
        step = next((i for i, (first, last) in enumerate(spans) if first <= line <= last), -1)
        rules.setdefault(step, []).append(str(violation.get("rule_name")))
    return rules


# --- comparing ----------------------------------------------------------------------------


def _short(table: str) -> str:
    return table.removeprefix(f"{APP}_")


def _locks_text(locks: set[tuple[str, str]]) -> str:
    by_mode: dict[str, list[str]] = {}
    for table, mode in sorted(locks):
        by_mode.setdefault(mode, []).append(_short(table))
    return ", ".join(f"{mode}({' '.join(tables)})" for mode, tables in by_mode.items()) or "none"


def _names(names: Any, aliases: dict[str, str]) -> set[str]:
    return {aliases.get(str(name), str(name)) for name in names or []}


def _blocks_text(blocks: dict[str, dict[str, bool | None]]) -> str:
    parts = []
    for table, result in sorted(blocks.items()):
        blocked = [kind for kind in ("select", "insert") if result.get(kind)]
        unknown = [kind for kind in ("select", "insert") if result.get(kind) is None]
        text = f"{_short(table)}: {'+'.join(blocked) or 'nothing'}"
        parts.append(text + (f" ({', '.join(unknown)} not known)" if unknown else ""))
    return "; ".join(parts) or "none"


def _predicted_pg_blocks(
    locks: set[tuple[str, str]], probed: dict[str, dict[str, bool | None]], parents: dict[str, set[str]]
) -> dict[str, dict[str, bool | None]]:
    """What B would find blocked if A held exactly ``locks`` (PostgreSQL's conflict table)."""
    modes: dict[str, set[str]] = {}
    for table, mode in locks:
        modes.setdefault(table, set()).add(mode)
    predicted: dict[str, dict[str, bool | None]] = {}
    for table, result in probed.items():
        own = modes.get(table, set())
        insert = bool(own & PG_CONFLICTS["RowExclusiveLock"]) or any(
            modes.get(parent, set()) & PG_CONFLICTS["RowShareLock"] for parent in parents.get(table, set())
        )
        predicted[table] = {  # compared where the probe told
            "select": bool(own & PG_CONFLICTS["AccessShareLock"]) if result.get("select") is not None else None,
            "insert": insert if result.get("insert") is not None else None,
        }
    return predicted


def compare_pg(row: Row, held_predicted: set[tuple[str, str]], aliases: dict[str, str]) -> set[tuple[str, str]]:
    """Fields of a PostgreSQL statement. ``held_predicted``: what its transaction held before it, as
    predicted; ``aliases``: a table's later name -> its name when the block began (what B sees).
    Returns the predicted locks, named so."""
    obs, predicted = row.observation, row.predicted or {}
    locks = {
        (aliases.get(str(lock.get("table")), str(lock.get("table"))), str(lock.get("mode")))
        for lock in predicted.get("locks") or []
    }
    observed_locks = {(aliases.get(table, table), mode) for table, mode in obs.locks}
    rewrites = _names(predicted.get("rewrites"), aliases)
    observed_rewrites = _names(obs.rewrites, aliases)
    have = row.predicted is not None
    if obs.locks_watched:
        row.fields.append(
            ("locks", _locks_text(locks), _locks_text(observed_locks), locks == observed_locks if have else None)
        )
    else:
        unseen = f"not observed ({obs.seconds * 1000:.0f} ms, outside a transaction: polled too few times)"
        row.fields.append(("locks", _locks_text(locks), unseen, None))
    row.fields.append(
        (
            "rewrites",
            " ".join(map(_short, sorted(rewrites))) or "none",
            " ".join(map(_short, sorted(observed_rewrites))) or "none",
            rewrites == observed_rewrites if have else None,
        )
    )
    row.fields.append(
        (
            "scan",
            str(bool(predicted.get("scan"))),
            str(obs.scan),
            bool(predicted.get("scan")) == obs.scan if have else None,
        )
    )
    if obs.blocks_when:
        already = {  # what the prediction says its transaction held already, on the tables it acts on
            (aliases.get(str(lock.get("table")), str(lock.get("table"))), str(lock.get("mode")))
            for lock in predicted.get("held") or []
        }
        expected = _predicted_pg_blocks(held_predicted | already | locks, obs.blocks, obs.fk_parents)
        row.fields.append(
            (
                f"blocks ({obs.blocks_when})",
                _blocks_text(expected),
                _blocks_text(obs.blocks),
                expected == obs.blocks if have else None,
            )
        )
    return locks


def compare_mariadb(row: Row) -> None:
    obs, predicted = row.observation, row.predicted or {}
    have = row.predicted is not None
    algorithm, lock = predicted.get("algorithm"), predicted.get("lock")
    row.fields.append(("algorithm", str(algorithm), str(obs.algorithm), algorithm == obs.algorithm if have else None))
    if algorithm or obs.algorithm:
        row.fields.append(("lock", str(lock), str(obs.lock), lock == obs.lock if have else None))
    rewrites = _names(predicted.get("rewrites"), obs.aliases)
    row.fields.append(
        (
            "rewrites",
            " ".join(map(_short, sorted(rewrites))) or "none",
            " ".join(map(_short, sorted(obs.rewrites))) or "none",
            rewrites == obs.rewrites if have else None,
        )
    )
    if obs.blocks_when:
        expected: dict[str, dict[str, bool | None]] = {}
        for table, result in obs.blocks.items():
            insert = None if result.get("insert") is None or not algorithm else lock in ("SHARED", "EXCLUSIVE")
            select = None if result.get("select") is None or not algorithm else lock == "EXCLUSIVE"
            expected[table] = {"select": select, "insert": insert}
        agree = None if not have or not algorithm else expected == obs.blocks
        text = _blocks_text(expected) if algorithm else "no prediction (no ALGORITHM)"
        row.fields.append(("blocks (during)", text, _blocks_text(obs.blocks), agree))


# --- running -------------------------------------------------------------------------------


def run_entry(project: Project, observer: Any, name: str, *, runbooks: Path) -> Entry:
    entry = Entry(name)
    vendor = project.database.vendor
    path = runbooks / f"{vendor}-{name}.sql"
    start = time.perf_counter()
    project.manage("byhand", "sql", APP, name, "-o", str(path))
    text = path.read_text(encoding="utf-8")
    runbook = parse_runbook(text)
    entry.linter = project.lint(name)
    squawk = squawk_rules(path, text) if vendor == "postgresql" else {}
    step_number = 0
    for block in runbook.blocks:
        observer.begin_block()
        held: set[tuple[str, str]] = set()
        aliases: dict[str, str] = {}
        for item in block.items:
            if isinstance(item, (Comment, Read)):
                continue
            if isinstance(item, Control):
                observer.execute(item.sql)
                held = set() if not getattr(observer, "in_transaction", False) else held
                continue
            assert isinstance(item, Step)
            if item.kind == "manual":
                raise BenchmarkError(f"{name}: a manual step, which the catalogue does not have")
            if item.kind != "schema":
                observer.execute(item.sql)
                step_number += 1
                continue
            observation = observer.observe(item.sql)
            row = Row(name, len(entry.rows) + 1, item.observed, observation, squawk=squawk.get(step_number, []))
            step_number += 1
            if vendor == "postgresql":
                for new, old in observation.aliases.items():
                    aliases[new] = aliases.get(old, old)
                predicted_locks = compare_pg(row, held, aliases)
                held = held | predicted_locks if observer.in_transaction else set()
            else:
                compare_mariadb(row)
            entry.rows.append(row)
            if observation.error:
                raise EntryFailed(entry, observation.error)
    if not entry.rows:
        entry.note = "no SQL on this vendor"
    entry.seconds = time.perf_counter() - start
    return entry


class EntryFailed(Exception):
    def __init__(self, entry: Entry, error: str) -> None:
        super().__init__(error)
        self.entry = entry


def run_vendor(url: str, entries: list[str], *, rows: int, runbooks: Path, keep: bool) -> VendorRun:
    database = Database.from_url(url)
    project = Project(database)
    say(f"{database.vendor}: filling 3 tables with {rows:,} rows each")
    fill = project.prepare(rows)
    result = VendorRun(database.vendor, database.server_version(), rows, fill)
    say(f"{database.vendor}: filled in {fill:.1f} s")
    observer: Any = (
        PostgresObserver(database, rows=rows) if database.vendor == "postgresql" else MariadbObserver(database)
    )
    names = migration_names()
    applied = "0001_initial"
    try:
        for name in entries:
            previous = names[names.index(name) - 1]
            if previous != applied:
                say(f"{database.vendor}: migrate {APP} {previous}")
                project.manage("migrate", APP, previous, "-v0")
            try:
                entry = run_entry(project, observer, name, runbooks=runbooks)
            except EntryFailed as exc:
                result.entries.append(exc.entry)
                result.stopped = f"{name}: {exc}"
                break
            except BenchmarkError as exc:
                result.entries.append(Entry(name, note=f"failed: {exc}"))
                result.stopped = f"{name}: {exc}"
                break
            result.entries.append(entry)
            applied = name
            verdict = {True: "agree", False: "DISAGREE", None: "no prediction"}[entry.agree]
            say(f"{database.vendor}: {name}: {len(entry.rows)} statement(s), {verdict}, {entry.seconds:.1f} s")
    finally:
        observer.close()
        if not keep:
            database.drop()
    return result


# --- the report ----------------------------------------------------------------------------


def _cell(text: str, limit: int = 0) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if not limit or len(text) <= limit else text[: limit - 1] + "…"


def _fields_text(row: Row, side: int) -> str:
    return "; ".join(f"{name}: {values[side]}" for name, *values in row.fields)


def report(run: VendorRun) -> str:
    vendor = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}[run.vendor]
    lines = [
        f"### {run.server}: {len(run.entries)} entries, {run.rows:,} rows per table"
        f" (filled in {run.fill_seconds:.0f} s)",
        "",
        "| entry | vendor | statement | byhand predicted | observed | agree | squawk rules | django-migration-linter |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in run.entries:
        if not entry.rows:
            lines.append(f"| {entry.name} | {vendor} | - | - | {_cell(entry.note)} | - | - | {_cell(entry.linter)} |")
        for row in entry.rows:
            observed = _fields_text(row, 1)
            if row.observation.error:
                observed = f"ERROR {row.observation.error}"
            if row.observation.probe_note:
                observed += f" ({row.observation.probe_note})"
            observed += f"; {row.observation.seconds:.2f} s"
            disagree = [name for name, _p, _o, agree in row.fields if agree is False]
            agree = {True: "yes", None: "n/a (no prediction)", False: "**no**: " + ", ".join(disagree or ["error"])}[
                row.agree
            ]
            squawk = " ".join(sorted(set(row.squawk) - _TIMEOUT_RULES)) or ("n/a" if run.vendor == "mysql" else "-")
            prediction = _fields_text(row, 0) if row.predicted is not None else '(no "observed" in the marker)'
            lines.append(
                f"| {entry.name if row.index == 1 else ''} | {vendor} | `{_cell(row.observation.sql, 110)}` "
                f"| {_cell(prediction)} | {_cell(observed)} | {agree} | {squawk} "
                f"| {_cell(entry.linter) if row.index == 1 else ''} |"
            )
    lines.append("")
    lines.append(summary(run))
    return "\n".join(lines) + "\n"


def summary(run: VendorRun) -> str:
    vendor = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}[run.vendor]
    with_sql = [entry for entry in run.entries if entry.rows]
    rows = [row for entry in with_sql for row in entry.rows]
    agreeing = sum(1 for entry in with_sql if entry.agree)
    predicted = sum(1 for entry in with_sql if entry.agree is not None)
    text = [
        f"**{vendor}: {len(with_sql)} entries with SQL ({len(run.entries) - len(with_sql)} without), "
        f"{predicted} with a prediction, {agreeing} agree; statements {sum(1 for r in rows if r.agree)}"
        f"/{len(rows)} agree.**"
    ]
    for row in rows:
        if row.agree is False:
            for name, predicted_text, observed_text, agree in row.fields:
                if agree is False:
                    text.append(
                        f"- {row.entry} #{row.index} {name}: predicted {predicted_text}, observed {observed_text}"
                    )
            if row.observation.error:
                text.append(f"- {row.entry} #{row.index}: {row.observation.error}")
    linter = {}
    for entry in run.entries:
        verdict = entry.linter.split(":", 1)[0]
        linter[verdict] = linter.get(verdict, 0) + 1
    text.append("- django-migration-linter: " + ", ".join(f"{k} {v}" for k, v in sorted(linter.items())))
    if run.vendor == "postgresql":
        flagged = sum(1 for entry in with_sql if any(set(row.squawk) - _TIMEOUT_RULES for row in entry.rows))
        text.append(
            f"- squawk: {flagged}/{len(with_sql)} entries flagged by a rule other than "
            "require-lock-timeout / require-statement-timeout (which flag every statement here)"
        )
    if run.stopped:
        text.append(f"- stopped at {run.stopped}")
    return "\n".join(text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--vendor", choices=["postgresql", "mariadb", "both"], default="both")
    parser.add_argument("--entries", help="migration numbers, ranges or parts of names: 2-10,addindex")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table (default: %(default)s)")
    parser.add_argument("--postgres-url", default=URLS["postgresql"], help="default: %(default)s")
    parser.add_argument("--mysql-url", default=URLS["mysql"], help="default: %(default)s")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--runbooks", type=Path, help="keep the runbooks in this folder")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be positive")
    entries = select_entries(args.entries, migration_names())
    urls = {"postgresql": [args.postgres_url], "mariadb": [args.mysql_url]}.get(
        args.vendor, [args.postgres_url, args.mysql_url]
    )
    context = describe_context()
    runbooks = args.runbooks or Path(tempfile.mkdtemp(prefix="byhand_catalogue_"))
    runbooks.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for url in urls:
            results.append(run_vendor(url, entries, rows=args.rows, runbooks=runbooks, keep=args.keep))
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.runbooks is None:
            shutil.rmtree(runbooks, ignore_errors=True)
    text = f"## The proof catalogue\n\n{context}\n\n" + "\n".join(report(result) for result in results)
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0 if all(not result.stopped for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
