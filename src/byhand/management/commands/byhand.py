"""``manage.py byhand``: the planning side (sql), and apply with the connection from settings."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import tempfile
from argparse import ArgumentParser, Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from byhand import bookkeeping, compiling, drift, planning, running
from byhand.cli import add_apply_arguments, run_apply
from byhand.exceptions import ByhandError
from byhand.vendors.target import params_from_settings

__all__ = ["Command"]

SQL_HELP = """\
Write ONE runbook for the migrations `manage.py migrate` would run with the same
arguments: no argument = every pending migration; APP_LABEL = up to the app's
leaf; APP_LABEL MIGRATION = forwards or backwards to it; APP_LABEL zero = unapply
the app. Each migration's SQL is rehearsed on a schema-only scratch copy of the
database, so later migrations get the index and constraint names the database
will really have. The database itself is only read."""


class Command(BaseCommand):
    help = "Plan Django migrations as a reviewable SQL runbook (see 'byhand sql --help')."

    def add_arguments(self, parser: ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        sql = commands.add_parser("sql", help="write the runbook for pending migrations", description=SQL_HELP)
        sql.add_argument("app_label", nargs="?", help="app label, as for migrate")
        sql.add_argument("migration_name", nargs="?", help="target migration (exact name or unique prefix), or 'zero'")
        sql.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")
        sql.add_argument("-o", "--output", type=Path, help="write the runbook to this file instead of standard output")
        sql.add_argument(
            "--migration",
            nargs=2,
            metavar=("APP_LABEL", "NAME"),
            help="one migration alone, as sqlmigrate does (its dependencies must be applied)",
        )
        sql.add_argument("--backwards", action="store_true", help="with --migration: unapply it")
        sql.add_argument(
            "--manual-steps",
            action="store_true",
            help="write RunPython operations into the runbook as manual steps (default: refuse and list them)",
        )
        sql.add_argument(
            "--scratch-database",
            metavar="ALIAS",
            help="create the rehearsal copy on this alias's server instead of the target's "
            "(same vendor and version; for a read-only role on the target)",
        )
        apply = commands.add_parser(
            "apply",
            help="run a runbook against a database of settings.DATABASES",
            description="The console script's 'byhand apply', with the connection taken from settings.",
        )
        add_apply_arguments(apply)
        apply.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")
        run_python = commands.add_parser(
            "run-python",
            help="run one manual step (RunPython) of a runbook",
            description="Run the Python function of manual step APP.MIGRATION:N against the database, with the "
            "historical models of that point of the migration, as migrate would. byhand apply stops before each "
            "manual step and prints this command; afterwards run apply again with --manual-step-done.",
        )
        run_python.add_argument("step", metavar="APP.MIGRATION:N", help="the manual step, as byhand apply names it")
        run_python.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")
        run_python.add_argument("--backwards", action="store_true", help="run its reverse code (backwards runbooks)")
        for verb, what in (("record", "record a migration as applied"), ("unrecord", "unrecord a migration")):
            sub = commands.add_parser(
                verb,
                help=f"{what} in django_migrations, as migrate --fake would, without the file on the database host",
                description=f"{what.capitalize()} in django_migrations under its full name (an exact name wins, "
                "then a unique prefix); a squash writes its replaced names and itself, as Django does. Refused "
                "when it is already done, or while dependencies are not recorded (record) or recorded "
                "migrations depend on it (unrecord), unless --force gives the reason, which is kept in the "
                "journal table.",
            )
            sub.add_argument("app_label", help="app label")
            sub.add_argument("migration_name", help="migration name (exact, or a unique prefix)")
            sub.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")
            sub.add_argument("--sql", action="store_true", help="print the INSERT/DELETE instead of executing it")
            sub.add_argument("--force", metavar="REASON", help="write it despite the checks; REASON is journaled")
            sub.add_argument(
                "--check",
                action="store_true",
                help="first verify (as byhand verify) that its schema effect is "
                + ("present" if verb == "record" else "absent")
                + "; refuse otherwise",
            )
            sub.add_argument("--journal-table", default="byhand_journal", help="(default: %(default)s)")
        verify = commands.add_parser(
            "verify",
            help="compare the live schema with what django_migrations claims",
            description="Migrate a scratch database (same server) to exactly the migrations recorded in "
            "django_migrations, introspect both, and report every difference with the migration behind it: "
            "recorded but not applied, applied but not recorded, the same object under another name, or "
            "unexplained. Read-only on the database. Exit 0 clean, 1 drift, 2 error.",
        )
        verify.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")
        verify.add_argument("--json", action="store_true", help="the report as JSON")
        verify.add_argument(
            "--scratch-database", metavar="ALIAS", help="make the scratch database on this alias's server"
        )
        verify.add_argument("--journal-table", default="byhand_journal", help="ignored like django_migrations")
        post_migrate = commands.add_parser(
            "post-migrate",
            help="send pre_migrate/post_migrate as migrate does (content types, permissions)",
            description="Send pre_migrate and post_migrate for the database as 'migrate' does when it has "
            "nothing to do: contenttypes creates missing content types, auth missing permissions, sites the "
            "default site. Nothing is planned, applied or recorded; django_migrations is not created.",
        )
        post_migrate.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")

    def run_from_argv(self, argv: list[str]) -> None:
        """The command line's way in (call_command does not use it): the process ends
        right after. A rehearsal leaves Django's rendered states behind as garbage,
        ~100 MB of cycles for 534 migrations, which the interpreter would collect on its
        way out for nothing (0.1 s): frozen, they are left to the end of the process."""
        try:
            super().run_from_argv(argv)
        finally:
            gc.freeze()

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["subcommand"] == "sql":
                self.sql(**options)
            elif options["subcommand"] == "apply":
                self.apply(**options)
            elif options["subcommand"] == "run-python":
                self.run_python(**options)
            elif options["subcommand"] == "post-migrate":
                self.post_migrate(**options)
            elif options["subcommand"] == "verify":
                self.verify(**options)
            elif options["subcommand"] in ("record", "unrecord"):
                self.record(unrecord=options["subcommand"] == "unrecord", **options)
        except ByhandError as exc:
            # verify: exit 1 means drift, so its errors exit 2
            raise CommandError(str(exc), returncode=2 if options["subcommand"] == "verify" else 1) from exc
        except KeyboardInterrupt as exc:
            what = str(exc) or "Ctrl-C"
            raise CommandError(f"interrupted ({what}); no scratch copy is left behind, nothing was written.") from exc

    def sql(self, *, database: str, output: Path | None, **options: Any) -> None:
        scratch = options["scratch_database"]
        _check_arguments(database, scratch, output)
        # The scratch copy is made while the migrations load; dropped on SIGTERM too.
        with _terminate_as_interrupt(), compiling.scratch_started(database, scratch_database=scratch) as copy:
            plan = _plan(database, options)
            if not plan.migrations and not planning.replacement_rows(plan):
                self.stderr.write(
                    f"No migrations to {'unapply' if plan.backwards else 'apply'} on '{database}': nothing to write."
                )
                return
            runbook = compiling.compile_runbook(plan, manual_steps=options["manual_steps"], scratch=copy)
        text = runbook.render()
        if output is None:
            self.stdout.write(text, ending="")
            return
        _write_atomically(output, text)
        self.stderr.write(f"Wrote {output} ({len(plan.migrations)} migrations).")

    def apply(self, *, database: str, runbook: Path, **options: Any) -> None:
        if database not in connections:
            raise CommandError(f"unknown database alias '{database}'; settings.DATABASES has {', '.join(connections)}.")
        connection = connections[database]
        params = params_from_settings(connection.settings_dict, vendor=connection.vendor)
        status = run_apply(runbook, params, Namespace(**options))
        if status:
            sys.exit(status)

    def run_python(self, *, step: str, database: str, backwards: bool, **options: Any) -> None:
        if database not in connections:
            raise CommandError(f"unknown database alias '{database}'; settings.DATABASES has {', '.join(connections)}.")
        for name in running.run_manual_step(step, database=database, backwards=backwards):
            self.stdout.write(f"ran {name}")
        self.stdout.write(f"Now run byhand apply again with --manual-step-done {step}.")

    def record(self, *, unrecord: bool, app_label: str, migration_name: str, database: str, **options: Any) -> None:
        _check_arguments(database, None, None)
        change = bookkeeping.plan_record(database=database, app_label=app_label, name=migration_name, unrecord=unrecord)
        if options["check"]:
            report = drift.verify_database(database, journal_table=options["journal_table"])
            change.problems.extend(bookkeeping.check_effect(change, report))
        if options["sql"]:
            for problem in change.problems:
                self.stdout.write(f"-- WARNING: {problem}")
            self.stdout.write("\n".join(change.statements))
            return
        bookkeeping.write_record(
            change, database=database, force=options["force"], journal_table=options["journal_table"]
        )
        verb = "Unrecorded" if unrecord else "Recorded"
        rows = ", ".join(f"{app}.{name}" for app, name in change.rows)
        forced = f" (forced: {options['force']})" if change.problems else ""
        self.stderr.write(f"{verb} {rows} in django_migrations of '{database}'{forced}.")

    def verify(self, *, database: str, **options: Any) -> None:
        try:
            _check_arguments(database, options["scratch_database"], None)
        except CommandError as exc:
            exc.returncode = 2  # exit 1 means drift
            raise
        report = drift.verify_database(
            database, scratch_database=options["scratch_database"], journal_table=options["journal_table"]
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "database": database,
                        "recorded": report.recorded,
                        "clean": report.clean,
                        "differences": [vars(d) for d in report.differences],
                    }
                )
            )
        else:
            for difference in report.differences:
                self.stdout.write(difference.describe())
            verdict = "no drift" if report.clean else f"{len(report.differences)} difference(s)"
            self.stdout.write(f"'{database}': {report.recorded} recorded migration(s), {verdict}.")
        if not report.clean:
            sys.exit(1)

    def post_migrate(self, *, database: str, verbosity: int, **options: Any) -> None:
        if database not in connections:
            raise CommandError(f"unknown database alias '{database}'; settings.DATABASES has {', '.join(connections)}.")
        running.send_migrate_signals(database=database, verbosity=verbosity, stdout=self.stdout)
        self.stderr.write(f"Sent pre_migrate and post_migrate for '{database}'.")


def _check_arguments(database: str, scratch: str | None, output: Path | None) -> None:
    """Refuse bad arguments before any work, so that nothing is rehearsed in vain."""
    for alias, what in ((database, "database"), (scratch, "scratch database")):
        if alias is not None and alias not in connections:
            raise CommandError(f"unknown {what} alias '{alias}'; settings.DATABASES has {', '.join(connections)}.")
    if output is not None and not os.access(output.parent, os.W_OK):
        raise CommandError(f"cannot write {output}: its folder does not exist or is not writable.")


def _plan(database: str, options: dict[str, Any]) -> planning.Plan:
    if options["migration"]:
        if options["app_label"]:
            raise CommandError("give either --migration APP NAME or APP_LABEL [MIGRATION], not both.")
        app_label, name = options["migration"]
        return planning.single_plan(
            database=database, app_label=app_label, migration=name, backwards=options["backwards"]
        )
    if options["backwards"]:
        raise CommandError(
            "--backwards goes with --migration; to go back, name the target: APP_LABEL MIGRATION (or zero)."
        )
    return planning.pending_plan(database=database, app_label=options["app_label"], migration=options["migration_name"])


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for a while, so that cleanups in finally run."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, then a rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
