"""pt-online-schema-change as the engine of a MySQL/MariaDB statement that only a copy of the
table will do (``byhand sql --online`` marks it; ``byhand apply`` runs it here).

pt-online-schema-change makes ``_t_new`` with the statement's change, keeps it in step with
triggers on ``t`` while it copies the rows in chunks, then swaps the two tables with one atomic
RENAME TABLE. What byhand adds around it:

- refusals before any change: no pt-online-schema-change, no primary or unique key for its
  triggers to find rows by, triggers of someone else's on the table, what another copy left;
- the credentials in a defaults file only this user can read, never in ``ps`` or the output;
- its metadata-lock waits bounded as byhand bounds its own, and its copy throttled
  (EngineSettings: fixed chunks, a pause after each, load limits);
- its progress as byhand's "waiting" events;
- the children's keys, re-pointed at the copy, rebuilt in place (foreign_key_checks off for
  them, through a --plugin when the ALTER itself adds a key and its rows are checked), not
  copied under a lock;
- the foreign keys' names put back after the cut-over. InnoDB's names are unique per
  database, so pt-online-schema-change names the copy's keys ``_name``, and its children's,
  re-pointed at the new table, too; migrate's schema has Django's names. The keys are
  journaled before the copy starts, so that a run killed after the swap is finished the same
  way by the next one;
- what a failed or interrupted copy left (its triggers first, then ``_t_new``, ``_t_old``)
  dropped: by this run when the copy fails or is interrupted, by the next run when this one
  was killed (the journal says it started the copy).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from byhand.exceptions import ByhandError, StatementFailed
from byhand.vendors.observing import copy_obstacle
from byhand.vendors.online import COPY, ENGINE, engine_alter, unquote

if TYPE_CHECKING:
    from byhand.vendors.target import Target

__all__ = ["EngineSettings", "ForeignKey", "PtOnlineSchemaChange", "engine_for"]

_FOREIGN_KEYS_SQL = """
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME,
       r.UPDATE_RULE, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME
 AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
  AND (k.TABLE_NAME IN ({marks}) OR k.REFERENCED_TABLE_NAME IN ({marks}))
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""
#: pt-online-schema-change's progress line: "Copying `db`.`t`:  27% 00:02 remain".
_COPYING = re.compile(r"Copying .*?:\s+(\d+)% (\S+) remain")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ")
_LOCK_ERRORS = {1205, 1213}
_ADDS_FOREIGN_KEY = re.compile(r"\bADD\s+(?:CONSTRAINT\s+(?:`[^`]*`|\S+)\s+)?FOREIGN\s+KEY\b", re.IGNORECASE)
#: A --plugin for pt-online-schema-change (Perl): foreign_key_checks off on its connection
#: just before it rebuilds the children's keys (its hook before_update_foreign_keys).
_UNCHECKED_CHILDREN = """package pt_online_schema_change_plugin;
sub new { my ($class, %args) = @_; return bless { cxn => $args{cxn} }, $class; }
sub before_update_foreign_keys { $_[0]->{cxn}->dbh()->do('SET SESSION foreign_key_checks = 0'); }
1;
"""
_DEFAULTS_PREFIX = "byhand-pt-osc-"


@dataclass(frozen=True)
class EngineSettings:
    """How pt-online-schema-change copies: fixed chunks of ``chunk_size`` rows with a pause
    of ``sleep`` seconds after each, pausing while ``max_load`` is exceeded and giving up
    past ``critical_load`` (its own --max-load/--critical-load syntax). Measured on a
    2,000,000-row MariaDB table under 150 reads and 50 updates a second (benchmarks/
    mariadb_copy.py, RESULTS.md): a 0.1 s pause copies it in 415 to 422 s, with no query over
    100 ms in 5 copies of 8 where the buffer pool holds the table (a few up to 127 ms, or one
    burst, in the others) and 3 to 9 (up to 143 ms) on a 128 MB pool; a 0.05 s pause let 135
    to 1,046 queries past 100 ms for a 225 to 231 s copy; migrate stalled every query for 2.5
    to 5.1 s."""

    executable: str = "pt-online-schema-change"
    chunk_size: int = 500
    sleep: float = 0.1
    max_load: str = "Threads_running=25"
    critical_load: str = "Threads_running=50"


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key: on ``table``, named ``name``, ``columns`` → ``referenced`` (``to``)."""

    table: str
    name: str
    columns: tuple[str, ...]
    referenced: str
    to: tuple[str, ...]
    on_update: str
    on_delete: str

    def as_list(self) -> list[Any]:
        return [
            self.table,
            self.name,
            list(self.columns),
            self.referenced,
            list(self.to),
            self.on_update,
            self.on_delete,
        ]

    @classmethod
    def from_list(cls, row: list[Any]) -> ForeignKey:
        table, name, columns, referenced, to, on_update, on_delete = row
        return cls(table, name, tuple(columns), referenced, tuple(to), on_update, on_delete)


class PtOnlineSchemaChange:
    """pt-online-schema-change, run for statements of ``target`` (a MySQL/MariaDB connection)."""

    name = ENGINE

    def __init__(self, target: Target, settings: EngineSettings, *, statements: Sequence[str] = ()) -> None:
        self.target = target
        self.settings = settings
        #: The runbook's statements, for what a later one expects of the copy (_names_kept).
        self.statements = statements

    def table_of(self, sql: str) -> str:
        return _parsed(sql)[0]

    # -- before any change ---------------------------------------------------------------

    def refusal(self, sql: str, *, resuming: bool) -> str | None:
        """Why this statement cannot run through pt-online-schema-change here, or None;
        ``resuming``: the journal says an earlier run of byhand's started this copy."""
        table, _ = _parsed(sql)
        quoted = self.target.quote_name(table)
        if shutil.which(self.settings.executable) is None:
            return (
                f"{self.settings.executable} is not installed (Debian: apt install percona-toolkit): it runs the "
                f"statement on {quoted} that only a copy of the table will do. Install it, or apply a runbook "
                "generated without --online"
            )
        if not self.target.table_exists(table):
            return None  # an earlier migration of the runbook makes it: asked again before the copy
        with contextlib.closing(self.target.connection.cursor()) as cursor:
            obstacle = copy_obstacle(cursor, table, ignored=self._trigger_names(table))
        if obstacle is not None:
            return (
                f"pt-online-schema-change cannot copy {quoted}, which has {obstacle}: apply a runbook generated "
                "without --online"
            )
        left = self.leftovers(table)
        if left and not resuming:
            return (
                f"{', '.join(left)} exist: another pt-online-schema-change of {quoted} is running, or was "
                "abandoned. Wait for it to end, or drop them (the triggers first)"
            )
        return None

    def leftovers(self, table: str) -> list[str]:
        """What a copy of ``table`` leaves until it ends: its triggers, its new and old tables."""
        names = self._trigger_names(table)
        found = [f"trigger {name}" for name in self._triggers_named(names)]
        return found + [f"table {name}" for name in _copies(table) if self.target.table_exists(name)]

    # -- the copy ----------------------------------------------------------------------

    def run(
        self,
        sql: str,
        *,
        where: str,
        lock_timeout: timedelta,
        report: Callable[[str], None],
        note: Callable[[dict[str, Any]], None],
    ) -> None:
        """Run ``sql`` through pt-online-schema-change; return once the copy is swapped in
        and the foreign keys have their names back; StatementFailed (what it left dropped)
        when it fails, KeyboardInterrupt (the same) when interrupted."""
        table, alter = _parsed(sql)
        refusal = self.refusal(sql, resuming=False)
        if refusal is not None:
            raise StatementFailed(where=where, error=refusal, rolled_back=True, undone="the statement changed nothing")
        keys = _foreign_keys(self.target, table)
        note({"engine": self.name, "foreign_keys": [key.as_list() for key in keys]})
        output: collections.deque[str] = collections.deque(maxlen=12)
        swapped = [False]
        kept = alter + "".join(_names_kept(self.target, table, alter, self.statements))
        checked = _ADDS_FOREIGN_KEY.search(kept) is not None  # see command()
        with self._defaults_file() as defaults, _plugin_file(checked) as plugin:
            argv = self.command(table, kept, defaults=defaults, lock_timeout=lock_timeout, plugin=plugin)
            try:
                code = self._follow(argv, output, report, swapped)
            except BaseException:
                self.clean(table, keys)
                raise
        if code != 0 and swapped[0]:
            # The copy is live, its clean-up failed: finish it (keys, old table), and go on.
            dropped = self.clean(table, keys)
            report(f"pt-online-schema-change failed after its cut-over ({code}); byhand finished: {', '.join(dropped)}")
            return
        if code != 0:
            dropped = self.clean(table, keys)
            said = self.target.params.scrub(" | ".join(line for line in output if line.strip()))
            raise StatementFailed(
                where=where,
                error=f"pt-online-schema-change exited with {code}: {said}",
                rolled_back=True,
                undone=f"{self.target.quote_name(table)} is as it was"
                + (f" (byhand dropped what the copy left: {', '.join(dropped)})" if dropped else ""),
            )
        _restore_keys(self.target, table, keys)

    def command(
        self, table: str, alter: str, *, defaults: str, lock_timeout: timedelta, plugin: str | None = None
    ) -> list[str]:
        """pt-online-schema-change's arguments for ``alter`` on ``table``: no secret among them.

        The children's keys are re-pointed at the copy with foreign_key_checks off, in place:
        with the checks on, each child table would be copied under a lock (no rows to check:
        they are the keys they had). An ALTER that adds a foreign key has the copy's rows
        checked as migrate's are, so the checks stay on and ``plugin`` (_plugin_file) turns
        them off just before the children's keys are rebuilt."""
        settings, params = self.settings, self.target.params
        dsn = f"F={defaults},D={params.database},t={table}"
        wait = max(1, math.ceil(lock_timeout.total_seconds()))
        variables = f"lock_wait_timeout={wait}"
        if _ADDS_FOREIGN_KEY.search(alter) is None:
            variables += ",foreign_key_checks=0"
        return [
            settings.executable,
            f"--alter={alter}",
            "--execute",
            "--alter-foreign-keys-method=rebuild_constraints",
            f"--chunk-size={settings.chunk_size}",
            "--chunk-time=0",
            f"--sleep={settings.sleep:g}",
            f"--max-load={settings.max_load}",
            f"--critical-load={settings.critical_load}",
            f"--set-vars={variables}",
            "--charset=utf8mb4",
            "--progress=time,1",
            "--no-version-check",
            *([f"--plugin={plugin}"] if plugin else []),
            dsn,
        ]

    def _follow(
        self, argv: list[str], output: collections.deque[str], report: Callable[[str], None], swapped: list[bool]
    ) -> int:
        """Run ``argv``, reporting its progress, until it exits; its exit status. ``swapped``
        becomes [True] once it says the copy was swapped in."""
        process = subprocess.Popen(
            _dying_with_byhand(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # Ctrl-C reaches byhand, which stops it and cleans up
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                text = _STAMP.sub("", line.rstrip())
                output.append(text)
                swapped[0] = swapped[0] or text.startswith("Swapped original and new tables OK")
                copying = _COPYING.search(text)
                if copying:
                    report(f"pt-online-schema-change: copying rows, {copying.group(1)}%, {copying.group(2)} left")
                elif text.endswith(("...", " OK.")) or text.startswith(("Pausing", "Replica lag", "Waiting")):
                    report(f"pt-online-schema-change: {text}")
            return process.wait()
        finally:
            if process.poll() is None:
                process.terminate()  # it drops nothing when interrupted: clean() does
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    @contextmanager
    def _defaults_file(self) -> Iterator[str]:
        """A [client] option file with the connection's credentials, readable by this user only."""
        params = self.target.params
        lines = ["[client]"]
        for key, value in (
            ("user", params.user),
            ("password", params.password),
            ("host", params.host),
            ("port", params.port),
            ("socket", params.options.get("unix_socket")),
        ):
            if value not in (None, ""):
                lines.append(f'{key}="{_option_value(str(value))}"')
        _remove_stale_defaults()
        handle, path = tempfile.mkstemp(prefix=f"{_DEFAULTS_PREFIX}{os.getpid()}-", suffix=".cnf")  # mode 0600
        try:
            with os.fdopen(handle, "w") as file:
                file.write("\n".join(lines) + "\n")
            yield path
        finally:
            os.unlink(path)

    # -- after it ------------------------------------------------------------------------

    def clean(self, table: str, keys: list[ForeignKey]) -> list[str]:
        """Drop what a copy of ``table`` left, the triggers first (the application's writes
        fire them), after putting the keys of ``keys`` back on ``table``; what it dropped."""
        left = self.leftovers(table)
        for name in self._triggers_named(self._trigger_names(table)):
            _run_with_retries(self.target, f"DROP TRIGGER IF EXISTS {self.target.quote_name(name)}")
        if self.target.table_exists(table):
            _restore_keys(self.target, table, keys)
        for name in _copies(table):
            if self.target.table_exists(name):
                _run_with_retries(self.target, f"DROP TABLE IF EXISTS {self.target.quote_name(name)}")
        return left

    def _trigger_names(self, table: str) -> list[str]:
        """pt-online-schema-change's names for its triggers on ``table``, as it makes them."""
        prefix = re.sub(r"\W", "_", f"pt_osc_{self.target.params.database}_{table}", flags=re.ASCII)[:60]
        return [f"{prefix}_{event}" for event in ("ins", "upd", "del")]

    def _triggers_named(self, names: list[str]) -> list[str]:
        marks = ", ".join(["%s"] * len(names))
        sql = (
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
            f"WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN ({marks}) ORDER BY 1"
        )
        return [str(row[0]) for row in self.target.execute(sql, names)]


@contextmanager
def _plugin_file(needed: bool) -> Iterator[str | None]:
    """The file of _UNCHECKED_CHILDREN while pt-online-schema-change runs, when ``needed``."""
    if not needed:
        yield None
        return
    handle, path = tempfile.mkstemp(prefix=f"{_DEFAULTS_PREFIX}{os.getpid()}-", suffix=".pm")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(_UNCHECKED_CHILDREN)
        yield path
    finally:
        os.unlink(path)


def _foreign_keys(target: Target, table: str) -> list[ForeignKey]:
    """The foreign keys on ``table``, its copies, and those that reference them."""
    names = [table, *_copies(table)]
    marks = ", ".join(["%s"] * len(names))
    rows = target.execute(_FOREIGN_KEYS_SQL.format(marks=marks), [*names, *names])
    keys: dict[tuple[str, str], list[Any]] = {}
    for child, name, column, referenced, to, on_update, on_delete in rows:
        key = keys.setdefault((child, name), [child, name, [], referenced, [], on_update, on_delete])
        key[2].append(column)
        key[4].append(to)
    return [ForeignKey.from_list(key) for key in keys.values()]


def _restore_keys(target: Target, table: str, before: list[ForeignKey]) -> list[str]:
    """Give each key of ``before`` (on ``table`` or referencing it) its name back where the
    copy renamed it, and point every key at ``table`` that points at one of its copies
    (the old table, after a swap the copy did not finish); the statements it ran."""
    copies = set(_copies(table))
    unmatched = [key for key in before if key.table not in copies and key.referenced not in copies]
    ran = []
    for key in _foreign_keys(target, table):
        if key.table in copies:
            continue  # dropped with its table
        if key in unmatched:
            unmatched.remove(key)
            continue
        match = next((k for k in unmatched if _same_key(key, k, table, copies)), None)
        if match is not None:
            unmatched.remove(match)
        elif key.referenced in copies:
            match = replace(key, referenced=table)
        else:
            continue  # not the copy's doing
        ran.append(_run_with_retries(target, _rename_key(target, key, match), unchecked=True))
    return ran


def _run_with_retries(target: Target, sql: str, *, unchecked: bool = False, attempts: int = 60) -> str:
    """``sql``, tried again while another session's lock is in the way (a second apart);
    ``unchecked``: with foreign_key_checks off for it alone."""
    errors = target.driver_errors()
    for attempt in range(1, attempts + 1):
        try:
            if unchecked:
                target.execute("SET SESSION foreign_key_checks = 0")
            try:
                target.execute(sql)
            finally:
                if unchecked:
                    target.execute("SET SESSION foreign_key_checks = 1")
            return sql
        except errors as exc:
            code = exc.args[0] if exc.args else None
            if code not in _LOCK_ERRORS or attempt == attempts:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")  # pragma: no cover


#: Django's ADD CONSTRAINT … FOREIGN KEY in an ALTER: its name and columns.
_ADDED_KEY = re.compile(r"ADD CONSTRAINT `((?:[^`]|``)+)` FOREIGN KEY \(([^)]*)\)", re.IGNORECASE)


def _names_kept(target: Target, table: str, alter: str, statements: Sequence[str]) -> list[str]:
    """Clauses for the copy's ALTER (on its new, empty table: no rows to read) that keep the
    names migrate's statements leave (``statements``: the runbook's):

    - the CHECK constraints' own names: pt-online-schema-change renames every constraint of
      the copy as it must rename the foreign keys (``x`` to ``_x``, ``_x`` to ``__x``, ``__x``
      to ``x``), but a CHECK is named per table, so the copy can have its name back;
    - the index a foreign key made for itself and left when it was dropped (``…_fk…``, no
      key of that name now). The server marks it as made for a key and replaces it by one
      named after the next key added on those columns; the copy's table declares it, and a
      declared index is kept. So where the runbook adds a key on those columns, the copy
      goes without it and the key makes its own, as under migrate (until then, the columns
      have no index).
    """
    q = target.quote_name
    clauses = []
    checks = target.execute(
        "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s AND LEVEL = 'Table' ORDER BY 1",
        [table],
    )
    for name, clause in checks:
        if q(name) in alter:
            continue  # the statement's own business
        # Under whichever name the copy has it (its own too: a version that does not rename).
        named = {name, _copy_name(name), ("_" + name)[:64]}
        clauses += [f", DROP CONSTRAINT IF EXISTS {q(other)}" for other in sorted(named)]
        clauses.append(f", ADD CONSTRAINT {q(name)} CHECK ({clause})")
    # The columns a key of the table has now: their index is that key's, whatever its name.
    keyed = {key.columns for key in _foreign_keys(target, table) if key.table == table}
    added = {
        tuple(unquote(c.strip()) for c in match.group(2).split(","))
        for sql in statements
        if sql.startswith(f"ALTER TABLE {q(table)} ")
        for match in _ADDED_KEY.finditer(sql)
    }
    for columns in sorted(added):
        for index in _indexes_on(target, table, list(columns)) if columns not in keyed else ():
            if "_fk" in index:
                clauses.append(f", DROP INDEX {q(index)}")
    return clauses


def _indexes_on(target: Target, table: str, columns: list[str]) -> list[str]:
    """The non-unique indexes of ``table`` on exactly ``columns``, in order."""
    rows = target.execute(
        "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR '\\n') "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
        "AND NON_UNIQUE = 1 GROUP BY INDEX_NAME ORDER BY 1",
        [table],
    )
    return [str(name) for name, named in rows if str(named).split("\n") == columns]


def _copy_name(name: str) -> str:
    """pt-online-schema-change's name for constraint ``name`` on its copy (3.x)."""
    if name.startswith("__"):
        return name[2:]
    return ("_" + name)[:64]


def _parsed(sql: str) -> tuple[str, str]:
    found = engine_alter(sql)
    if found is None:
        raise ByhandError(f"pt-online-schema-change cannot run {sql[:80]!r}: it is not one ALTER TABLE it copies")
    return found


def _copies(table: str) -> tuple[str, str]:
    """The tables a copy of ``table`` makes: the new one, and the original once swapped out."""
    return (f"_{table}_new"[:64], f"_{table}_old"[:64])


def _same_key(now: ForeignKey, before: ForeignKey, table: str, copies: set[str]) -> bool:
    """Whether ``now`` is ``before`` renamed or re-pointed by a copy of ``table``."""
    referenced = {now.referenced, before.referenced}
    return (
        now.table == before.table
        and (now.referenced == before.referenced or (table in referenced and referenced <= {table, *copies}))
        and (now.columns, now.to, now.on_update, now.on_delete)
        == (before.columns, before.to, before.on_update, before.on_delete)
    )


def _rename_key(target: Target, now: ForeignKey, key: ForeignKey) -> str:
    """The statements that give ``now`` the name and referenced table of ``key``, in place:
    without checking rows (they are the rows the key had), so no copy of the table."""
    q = target.quote_name
    columns, to = ", ".join(map(q, key.columns)), ", ".join(map(q, key.to))
    rules = "".join(
        f" ON {what} {rule}"
        for what, rule in (("DELETE", key.on_delete), ("UPDATE", key.on_update))
        if rule != "RESTRICT"
    )
    return (
        f"ALTER TABLE {q(key.table)} DROP FOREIGN KEY {q(now.name)}, ADD CONSTRAINT {q(key.name)} FOREIGN KEY "
        f"({columns}) REFERENCES {q(key.referenced)} ({to}){rules}, ALGORITHM=INPLACE, LOCK=NONE"
    )


def _remove_stale_defaults() -> None:
    """Remove the defaults (and plugin) files of runs killed before they could (SIGKILL): those
    of this user whose process is gone."""
    for path in Path(tempfile.gettempdir()).glob(f"{_DEFAULTS_PREFIX}*"):
        if path.suffix not in (".cnf", ".pm"):
            continue
        pid = path.name[len(_DEFAULTS_PREFIX) :].partition("-")[0]
        try:
            if path.stat().st_uid != os.getuid() or not pid.isdigit():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except OSError:
            continue  # another user's process, or the file went meanwhile


def _option_value(value: str) -> str:
    """``value`` inside double quotes in a MySQL option file."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _dying_with_byhand(argv: list[str]) -> list[str]:
    """``argv`` sent SIGTERM when byhand dies, a SIGKILL too (util-linux's setpriv, where it
    is), so that no copy runs on unwatched while the next apply cleans up after it."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def engine_for(
    target: Target, online: dict[str, Any] | None, settings: EngineSettings, *, statements: Sequence[str] = ()
) -> PtOnlineSchemaChange | None:
    """The engine that runs a statement with this ``online`` marker (``statements``: the
    runbook's), or None (the driver runs it)."""
    if online is None or online.get("form") != COPY:
        return None
    return PtOnlineSchemaChange(target, settings, statements=statements)
