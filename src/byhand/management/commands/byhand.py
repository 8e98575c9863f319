"""``manage.py byhand``: the planning side (sql, record, verify, run-python, post-migrate),
and apply with the connection taken from settings.DATABASES."""

from __future__ import annotations

import gc
import json
import os
import sys
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from byhand.console import apply_options, read_runbook, run_apply, terminate_as_interrupt, write_atomically
from byhand.exceptions import ByhandError, ManualStepOutOfPlace
from byhand.management.arguments import add_subcommands
from byhand.planning import compiling, manual_steps, plans, recording, signals, verifying
from byhand.planning.scratch import scratch_started
from byhand.runbook import escape_comment
from byhand.vendors import get_vendor

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
        # verify: exit 1 means drift, so its errors exit 2
        error_status = 2 if subcommand == "verify" else 1
        try:
            _check_arguments(options)
            with terminate_as_interrupt():
                handlers[subcommand](unrecord=subcommand == "unrecord", **options)
        except CommandError as exc:
            exc.returncode = error_status
            raise
        except ByhandError as exc:
            raise CommandError(str(exc), returncode=error_status) from exc
        except KeyboardInterrupt as exc:
            what = str(exc) or "Ctrl-C"
            raise CommandError(f"interrupted ({what}); {_INTERRUPTED[subcommand]}") from exc

    def sql(self, *, database: str, output: Path | None, scratch_database: str | None, **options: Any) -> None:
        # The scratch copy is made while the migrations load; dropped on SIGTERM too.
        with scratch_started(database, scratch_database=scratch_database) as copy:
            plan = _plan(database, options)
            if not plan.migrations and not plans.replacement_rows(plan):
                verb = "unapply" if plan.backwards else "apply"
                self.stderr.write(f"No migrations to {verb} on '{database}': nothing to write.")
                return
            runbook = compiling.compile_runbook(plan, manual_steps=options["manual_steps"], scratch=copy)
        text = runbook.render()
        if output is None:
            self.stdout.write(text, ending="")
            return
        write_atomically(output, text)
        count = len(plan.migrations)
        self.stderr.write(f"Wrote {output} ({count} migration{'' if count == 1 else 's'}).")

    def apply(self, *, database: str, runbook: Path, **options: Any) -> None:
        connection = connections[database]
        params = get_vendor(connection.vendor).params_from_settings(connection.settings_dict)
        status = run_apply(runbook, params, apply_options(options), json_lines=options["json"])
        if status:
            sys.exit(status)

    def run_python(self, *, step: str, database: str, backwards: bool, force: str | None, **options: Any) -> None:
        try:
            ran = manual_steps.run_manual_step(
                step, database=database, backwards=backwards, force=force, journal_table=options["journal_table"]
            )
        except ManualStepOutOfPlace as exc:  # refused, nothing run: its own status (2), whatever handle() maps
            self.stderr.write(str(exc))
            sys.exit(exc.exit_status)
        for name in ran:
            self.stdout.write(f"ran {name}")
        self.stdout.write(f"Now run byhand apply again with --manual-step-done {step}.")

    def record(self, *, unrecord: bool, app_label: str, migration_name: str, database: str, **options: Any) -> None:
        change = recording.plan_record(database=database, app_label=app_label, name=migration_name, unrecord=unrecord)
        if options["check"]:
            report = verifying.verify_database(database, journal_table=options["journal_table"])
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

    def verify(self, *, database: str, scratch_database: str | None, journal_table: str, **options: Any) -> None:
        report = verifying.verify_database(database, scratch_database=scratch_database, journal_table=journal_table)
        if options["json"]:
            differences = [vars(d) for d in report.differences]
            summary = {"database": database, "recorded": report.recorded, "clean": report.clean}
            self.stdout.write(json.dumps({**summary, "differences": differences}))
        else:
            for difference in report.differences:
                self.stdout.write(difference.describe())
            verdict = "no drift" if report.clean else f"{len(report.differences)} difference(s)"
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


def _check_arguments(options: dict[str, Any]) -> None:
    """Refuse bad arguments before any work, so that nothing is rehearsed in vain."""
    for key, what in (("database", "database"), ("scratch_database", "scratch database")):
        alias = options.get(key)
        if alias is not None and alias not in connections:
            raise CommandError(f"unknown {what} alias '{alias}'; settings.DATABASES has {', '.join(connections)}.")
    output = options.get("output")
    if output is not None and not os.access(output.parent, os.W_OK):
        raise CommandError(f"cannot write {output}: its folder does not exist or is not writable.")


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
