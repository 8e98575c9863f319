"""The subcommands of ``manage.py byhand`` and their arguments (the planning side's front end)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from byhand.console import add_apply_arguments, add_journal_argument

__all__ = ["SQL_HELP", "add_subcommands"]

SQL_HELP = """\
Write ONE runbook for the migrations `manage.py migrate` would run with the same
arguments: no argument = every pending migration; APP_LABEL = up to the app's
leaf; APP_LABEL MIGRATION = forwards or backwards to it; APP_LABEL zero = unapply
the app. Each migration's SQL is rehearsed on a schema-only scratch copy of the
database, so later migrations get the index and constraint names the database
will really have. The database itself is only read."""

_RECORD_HELP = (
    "{what} in django_migrations under its full name (an exact name wins, then a unique prefix); a squash "
    "writes its replaced names and itself, as Django does. Refused when it is already done, or while "
    "dependencies are not recorded (record) or recorded migrations depend on it (unrecord), unless --force "
    "gives the reason, which is kept in the journal table."
)


def add_subcommands(parser: ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    _sql(commands.add_parser("sql", help="write the runbook for pending migrations", description=SQL_HELP))
    apply = commands.add_parser(
        "apply",
        help="run a runbook against a database of settings.DATABASES",
        description="The console script's 'byhand apply', with the connection taken from settings.",
    )
    add_apply_arguments(apply)
    _database(apply)
    _run_python(commands)
    for verb, what in (("record", "record a migration as applied"), ("unrecord", "unrecord a migration")):
        _record(commands, verb, what)
    _verify(commands)
    post_migrate = commands.add_parser(
        "post-migrate",
        help="send pre_migrate/post_migrate as migrate does (content types, permissions)",
        description="Send pre_migrate and post_migrate for the database as 'migrate' does when it has "
        "nothing to do: contenttypes creates missing content types, auth missing permissions, sites the "
        "default site. Nothing is planned, applied or recorded; django_migrations is not created. "
        "With --runbook, post_migrate gets the plan migrate would have given it for the runbook's "
        "migrations (Django 6.1 renames the permissions of a renamed model from it).",
    )
    _database(post_migrate)
    post_migrate.add_argument(
        "--runbook",
        type=Path,
        action="append",
        default=[],
        help="a runbook applied to the database (repeatable, in the order they ran): its migrations "
        "that the database has as the runbook leaves them are post_migrate's plan",
    )


def _database(parser: ArgumentParser) -> None:
    parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: %(default)s)")


def _scratch_prefix(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--scratch-prefix",
        metavar="PREFIX",
        help="how the scratch database's name starts, for a role that may create only databases named so: "
        "1 to 40 letters, digits and underscores, not starting with a digit (default: settings."
        "BYHAND_SCRATCH_PREFIX, else byhand_scratch_); the name is PREFIX<pid>_<random>",
    )


def _sql(sql: ArgumentParser) -> None:
    sql.add_argument("app_label", nargs="?", help="app label, as for migrate")
    sql.add_argument("migration_name", nargs="?", help="target migration (exact name or unique prefix), or 'zero'")
    _database(sql)
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
    _scratch_prefix(sql)
    sql.add_argument(
        "--defaults-from-rehearsal",
        action="store_true",
        help="a field default that queries the database reads rows a step earlier in the same plan makes "
        "(a RunPython, a RunSQL): write the value that step made on the scratch copy, with a WARNING, "
        "instead of refusing; right only if the step makes the same value on the target (serial keys of "
        "a fresh install, not random UUIDs). Without such a step, the value is read from the target",
    )
    sql.add_argument(
        "--online",
        action="store_true",
        help="PostgreSQL: write, for each statement that would hold an existing table while it reads every row, "
        "the form that does not: CREATE INDEX CONCURRENTLY; ADD CONSTRAINT ... NOT VALID, then VALIDATE "
        "CONSTRAINT in a transaction of its own (foreign keys, checks); a unique constraint as CREATE UNIQUE "
        "INDEX CONCURRENTLY, then UNIQUE USING INDEX; SET NOT NULL after a validated CHECK (IS NOT NULL), "
        "dropped after. Django's statement stays beside each as a comment, and the schema is migrate's. Such "
        "a migration runs as several transactions (apply resumes it statement by statement) and is recorded "
        "with its last statement. MySQL/MariaDB: each ALTER the rehearsal found the server runs as "
        "ALGORITHM=INSTANT, NOCOPY or INPLACE with LOCK=NONE says so in the statement, so that the server "
        "refuses it rather than copy the table under a lock if this table needs a copy after all. Statements "
        "with no such form (PostgreSQL: a type change that rewrites the table; MySQL/MariaDB: what only a "
        "copy will do) stay as Django wrote them; 'byhand review' shows what each one locks. Not on SQLite",
    )


def _run_python(commands: Any) -> None:
    run_python = commands.add_parser(
        "run-python",
        help="run one manual step (RunPython) of a runbook",
        description="Run the Python function of manual step APP.MIGRATION:N against the database, with the "
        "historical models of that point of the migration, as migrate would. byhand apply stops before each "
        "manual step and prints this command; afterwards run apply again with --manual-step-done. Refused "
        "(exit 2, nothing run) unless the database is at that step: forwards, the migration's dependencies "
        "recorded and it not; --backwards, it recorded and no migration depending on it. Each run is "
        "journaled (started or forced, then done, failed or interrupted).",
    )
    run_python.add_argument("step", metavar="APP.MIGRATION:N", help="the manual step, as byhand apply names it")
    _database(run_python)
    run_python.add_argument("--backwards", action="store_true", help="run its reverse code (backwards runbooks)")
    run_python.add_argument(
        "--force",
        metavar="REASON",
        help="run it although the database is not at that step (or it is the other direction's); "
        "REASON is journaled with the run",
    )
    add_journal_argument(run_python)


def _record(commands: Any, verb: str, what: str) -> None:
    sub = commands.add_parser(
        verb,
        help=f"{what} in django_migrations, as migrate --fake would, without the file on the database host",
        description=_RECORD_HELP.format(what=what.capitalize()),
    )
    sub.add_argument("app_label", help="app label")
    sub.add_argument("migration_name", help="migration name (exact, or a unique prefix)")
    _database(sub)
    sub.add_argument("--sql", action="store_true", help="print the INSERT/DELETE instead of executing it")
    sub.add_argument("--force", metavar="REASON", help="write it despite the checks; REASON is journaled")
    effect = "present" if verb == "record" else "absent"
    sub.add_argument(
        "--check",
        action="store_true",
        help=f"first verify (as byhand verify) that its schema effect is {effect}; refuse otherwise",
    )
    _scratch_prefix(sub)
    add_journal_argument(sub)


def _verify(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="compare the live schema with what django_migrations claims",
        description="Migrate a scratch database (same server) to exactly the migrations recorded in "
        "django_migrations, introspect both, and report every difference with the migration behind it: "
        "recorded but not applied, applied but not recorded (when all of a pending migration is there), "
        "partly applied (never to be recorded), the same object under another name, or unexplained. "
        "Read-only on the database. Exit 0 clean, 1 drift, 2 error.",
    )
    _database(verify)
    verify.add_argument("--json", action="store_true", help="the report as JSON")
    verify.add_argument("--scratch-database", metavar="ALIAS", help="make the scratch database on this alias's server")
    _scratch_prefix(verify)
    add_journal_argument(verify, help="the journal table, ignored like django_migrations (default: byhand_journal)")
