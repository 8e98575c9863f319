"""``manage.py byhand``: the planning side (sql, record, verify, run-python, post-migrate),
and apply with the connection taken from settings.DATABASES."""

from __future__ import annotations

import gc
import json
import os
import re
import sys
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from byhand.console import apply_options, read_runbook, run_apply, terminate_as_interrupt, write_atomically
from byhand.exceptions import ByhandError, CannotConnect, OnlineUnsupported
from byhand.management.arguments import add_subcommands
from byhand.planning import compiling, manual_steps, plans, recording, signals, verifying
from byhand.planning.scratch import scratch_started
from byhand.runbook import escape_comment
from byhand.vendors import get_vendor
from byhand.vendors.base import SCRATCH_PREFIX

__all__ = ["Command"]


class Command(BaseCommand):
    help = "Plan Django migrations as a reviewable SQL runbook (see 'byhand sql --help')."

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_subcommands(parser)

    def get_check_kwargs(self, options: Any) -> dict[str | None, Any]:
        """System checks for the chosen database only, as migrate does: from Django 6.1,
        checks given no databases run the database checks of every alias, and MySQL's
        field checks connect to each one (an alias whose server is down or whose
        database does not exist fails the command). Django 4.2 does not call this."""
        kwargs: dict[str | None, Any] = {**super().get_check_kwargs(options)}
        kwargs["databases"] = [options.get("database") or DEFAULT_DB_ALIAS]
        return kwargs

    def run_from_argv(self, argv: list[str]) -> None:
        """The command line's way in (call_command does not use it): the process ends
        right after. A rehearsal leaves Django's rendered states behind as garbage,
        ~100 MB of cycles for 534 migrations, which the interpreter would collect on its
        way out for nothing (0.1 s): frozen, they are left to the end of the process."""
        try:
            super().run_from_argv(argv)
        finally:
            gc.freeze()

    def execute(self, *args: Any, **options: Any) -> Any:
        """Arguments checked and the database reached before anything else, Django's system
        checks included (MySQL's connect): each failure is one message and the subcommand's
        exit status (_exit_status), never a traceback."""
        subcommand = options["subcommand"]
        received: list[str] = []  # SIGTERM/SIGHUP, even if a driver turned it into another error
        try:
            _check_arguments(options)
            if subcommand != "apply":  # apply connects through its own driver connection
                _connect(options["database"])
            with terminate_as_interrupt(received):
                return super().execute(*args, **options)
        except KeyboardInterrupt as exc:
            what = str(exc) or "Ctrl-C"
            raise CommandError(f"interrupted ({what}); {_INTERRUPTED[subcommand]}") from exc
        except (CommandError, ByhandError) as exc:
            if received:
                raise CommandError(f"interrupted ({received[0]}); {_INTERRUPTED[subcommand]}") from exc
            if isinstance(exc, CommandError):
                exc.returncode = _exit_status(subcommand, None)
                raise
            raise CommandError(str(exc), returncode=_exit_status(subcommand, exc)) from exc

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        handlers: dict[str, Callable[..., None]] = {
            "sql": self.sql,
            "apply": self.apply,
            "run-python": self.run_python,
            "record": self.record,
            "unrecord": self.record,
            "verify": self.verify,
            "post-migrate": self.post_migrate,
        }
        handlers[subcommand](unrecord=subcommand == "unrecord", **options)

    def sql(
        self, *, database: str, output: Path | None, scratch_database: str | None, scratch_prefix: str, **options: Any
    ) -> None:
        if options["online"] and not get_vendor(connections[database].vendor).online_forms:
            raise OnlineUnsupported(get_vendor(connections[database].vendor).title)  # before a scratch copy is made
        # The scratch copy is made while the migrations load; dropped on SIGTERM too.
        with scratch_started(database, scratch_database=scratch_database, prefix=scratch_prefix) as copy:
            plan = _plan(database, options)
            if not plan.migrations and not plans.replacement_rows(plan):
                verb = "unapply" if plan.backwards else "apply"
                self.stderr.write(f"No migrations to {verb} on '{database}': nothing to write.")
                return
            key_changes: list[str] = []
            runbook = compiling.compile_runbook(
                plan,
                manual_steps=options["manual_steps"],
                scratch=copy,
                defaults_from_rehearsal=options["defaults_from_rehearsal"],
                on_key_change=key_changes.append,
                online=options["online"],
            )
        if key_changes:
            self.stderr.write(f"NOTE: {compiling.KEY_CHANGE_NOTE} (also at the top of the runbook):")
            for change in key_changes:
                self.stderr.write(f"  {change}")
        text = runbook.render()
        if output is None:
            _write_stdout(self.stdout, text)
            return
        try:
            write_atomically(output, text)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}.") from None
        count = len(plan.migrations)
        self.stderr.write(f"Wrote {output} ({count} migration{'' if count == 1 else 's'}).")

    def apply(self, *, database: str, runbook: Path, **options: Any) -> None:
        connection = connections[database]
        params = get_vendor(connection.vendor).params_from_settings(connection.settings_dict)
        status = run_apply(runbook, params, apply_options(options), json_lines=options["json"])
        if status:
            sys.exit(status)

    def run_python(self, *, step: str, database: str, backwards: bool, force: str | None, **options: Any) -> None:
        ran = manual_steps.run_manual_step(
            step, database=database, backwards=backwards, force=force, journal_table=options["journal_table"]
        )
        for name in ran:
            self.stdout.write(f"ran {name}")
        self.stdout.write(f"Now run byhand apply again with --manual-step-done {step}.")

    def record(self, *, unrecord: bool, app_label: str, migration_name: str, database: str, **options: Any) -> None:
        change = recording.plan_record(database=database, app_label=app_label, name=migration_name, unrecord=unrecord)
        if options["check"]:
            report = verifying.verify_database(
                database,
                scratch_prefix=options["scratch_prefix"],
                journal_table=options["journal_table"],
                every_pending=True,  # what the migration to record does, even on a database without drift
            )
            change.problems.extend(recording.check_effect(change, report))
        if options["sql"]:
            for problem in change.problems:
                self.stdout.write(escape_comment(f"-- WARNING: {problem}"))  # one comment line, whatever a name holds
            self.stdout.write("\n".join(change.statements))
            return
        recording.write_record(
            change, database=database, force=options["force"], journal_table=options["journal_table"]
        )
        verb = "Unrecorded" if unrecord else "Recorded"
        rows = ", ".join(f"{app}.{name}" for app, name in change.rows)
        forced = f" (forced: {options['force']})" if change.problems else ""
        self.stderr.write(f"{verb} {rows} in django_migrations of '{database}'{forced}.")

    def verify(
        self, *, database: str, scratch_database: str | None, scratch_prefix: str, journal_table: str, **options: Any
    ) -> None:
        report = verifying.verify_database(
            database, scratch_database=scratch_database, scratch_prefix=scratch_prefix, journal_table=journal_table
        )
        if options["json"]:
            differences = [vars(d) for d in report.differences]
            summary = {"database": database, "recorded": report.recorded, "clean": report.clean}
            self.stdout.write(json.dumps({**summary, "differences": differences}))
        else:
            for difference in report.differences:
                self.stdout.write(difference.describe())
            drift = [d for d in report.differences if d.verdict not in verifying.INFORMATIONAL]
            verdict = f"{len(drift)} difference(s)" if drift else "no drift"
            if len(drift) < len(report.differences):
                verdict += f", {len(report.differences) - len(drift)} name(s) as Django's own backwards gives them"
            self.stdout.write(f"'{database}': {report.recorded} recorded migration(s), {verdict}.")
        if not report.clean:
            sys.exit(1)

    def post_migrate(self, *, database: str, verbosity: int, runbook: list[Path], **options: Any) -> None:
        runbooks = [read_runbook(path) for path in runbook]
        plan, left_out = signals.post_migrate_plan(runbooks, database=database)
        for reason in left_out:
            self.stderr.write(f"{reason}: left out of post_migrate's plan.")
        signals.send_migrate_signals(database=database, verbosity=verbosity, stdout=self.stdout, plan=plan)
        given = f" with a plan of {len(plan)} migration(s)" if runbooks else ""
        self.stderr.write(f"Sent pre_migrate and post_migrate for '{database}'{given}.")


#: What an interruption leaves, per subcommand.
_INTERRUPTED = {
    "sql": "no scratch copy is left behind, nothing was written.",
    "verify": "no scratch copy is left behind, nothing was written.",
    "record": "no scratch copy is left behind, nothing was written.",
    "unrecord": "no scratch copy is left behind, nothing was written.",
    "apply": "the open transaction was rolled back; run the same runbook again to resume.",
    "run-python": "what the function committed before it stays; check its data before running it again.",
    "post-migrate": "what the receivers committed before it stays; send the signals again.",
}


def _exit_status(subcommand: str, error: ByhandError | None) -> int:
    """What a failed subcommand exits with (README, "manage.py byhand's exit statuses"):
    sql 1 whatever the reason (it changes nothing); verify 2 (its 1 means drift); the others
    the error's own status (2 refused, nothing changed), and 2 for bad arguments."""
    if subcommand == "sql":
        return 1
    if subcommand == "verify" or error is None:
        return 2
    return int(error.exit_status)


def _check_arguments(options: dict[str, Any]) -> None:
    """Refuse bad arguments before any work, so that nothing is rehearsed in vain."""
    for key, what in (("database", "database"), ("scratch_database", "scratch database")):
        alias = options.get(key)
        if alias is not None and alias not in connections:
            raise CommandError(f"unknown {what} alias '{alias}'; settings.DATABASES has {', '.join(connections)}.")
    output = options.get("output")
    if output is not None:
        _check_output(output)
    if "scratch_prefix" in options:
        options["scratch_prefix"] = _scratch_prefix(options["scratch_prefix"])


def _check_output(output: Path) -> None:
    """The runbook's file can be written: it is not a folder, and its folder exists and is writable."""
    if output.is_dir():
        raise CommandError(f"cannot write {output}: it is a directory.")
    if output.exists() and not output.is_file():  # /dev/full, a FIFO: the rename would replace it
        raise CommandError(f"cannot write {output}: it is not a regular file (write to standard output instead).")
    folder = output.parent
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                raise CommandError(f"cannot write {output}: {above} is not a directory.")
            break
    if not folder.is_dir():
        raise CommandError(f"cannot write {output}: its folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"cannot write {output}: its folder {folder} is not writable.")


#: What a scratch database's name may start with: it is written unquoted into messages
#: and grants, and with <pid>_<random> stays under PostgreSQL's 63 and MySQL's 64 bytes.
_SCRATCH_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _scratch_prefix(option: str | None) -> str:
    """--scratch-prefix, else settings.BYHAND_SCRATCH_PREFIX, else byhand_scratch_."""
    where = "--scratch-prefix" if option is not None else "settings.BYHAND_SCRATCH_PREFIX"
    prefix = option if option is not None else getattr(settings, "BYHAND_SCRATCH_PREFIX", SCRATCH_PREFIX)
    if not isinstance(prefix, str) or not _SCRATCH_PREFIX.fullmatch(prefix):
        raise CommandError(
            f"{where} {prefix!r} cannot start a database name: give 1 to 40 letters, digits and "
            "underscores, not starting with a digit (such as byhand_scratch_)."
        )
    return prefix


def _connect(alias: str) -> None:
    """Reach the database once, first: an unreachable or misconfigured server is one
    message (its password never in it), not a traceback from whatever touched it first."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        vendor = get_vendor(connection.vendor)
        detail = vendor.params_from_settings(connection.settings_dict).error_text(exc) or type(exc).__name__
        raise CannotConnect(f"database '{alias}'", detail, check=vendor.connect_check) from None


def _write_stdout(stdout: Any, text: str) -> None:
    """The runbook on standard output, or one message if it cannot take it (a full disk,
    a reader that went away). Standard output then points at /dev/null, so that Python's
    own flush on the way out neither fails nor prints a second error."""
    try:
        stdout.write(text, ending="")
        stdout.flush()
    except OSError as exc:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise CommandError(f"cannot write the runbook to standard output: {exc.strerror or exc}.") from None


def _plan(database: str, options: dict[str, Any]) -> plans.Plan:
    if options["migration"]:
        if options["app_label"]:
            raise CommandError("give either --migration APP NAME or APP_LABEL [MIGRATION], not both.")
        app_label, name = options["migration"]
        return plans.single_plan(database=database, app_label=app_label, migration=name, backwards=options["backwards"])
    if options["backwards"]:
        raise CommandError(
            "--backwards goes with --migration; to go back, name the target: APP_LABEL MIGRATION (or zero)."
        )
    return plans.pending_plan(database=database, app_label=options["app_label"], migration=options["migration_name"])
