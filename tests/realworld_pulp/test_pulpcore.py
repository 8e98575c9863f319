"""The oracle of tests/test_oracle.py on pulpcore (3.123.1, PostgreSQL only): 73 migrations of
its own (a squash of 90, RunSQL triggers and functions, AddIndexConcurrently, GIN indexes,
HStoreExtension with an HStoreField(default=dict), custom operations) and a default that
reads the database: ``get_domain_pk()``, the default of the ``pulp_domain`` foreign keys
of 0102, 0106, 0125, 0138, 0145 and 0153, runs ``SELECT pulp_id FROM core_domain WHERE
name = 'default'``, a row that 0101's RunPython makes with a random UUID.

From empty: byhand refuses the whole plan (the row is made by a manual step of the same
plan, and a random UUID is not the same on every database: ``--defaults-from-rehearsal``
would be wrong here), so the operator's way is taken: the runbook up to 0101, its manual
step run with ``byhand run-python``, then the runbook for the rest, which reads the default
from the target. Behind: databases that ``migrate`` took to 0101 (the row made by the real
RunPython), then byhand's runbook for the rest. Backwards as far as ``migrate`` goes for a
few steps. ``byhand verify`` must be clean on what ``migrate`` made.

Run it alone, with its own settings and a venv holding pulpcore (see README.md):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/byhand_example \\
      DJANGO_SETTINGS_MODULE=realworld_pulp.settings python -m pytest tests/realworld_pulp
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.models.signals import post_migrate
from pulpcore.app import apps as pulp_apps
from pulpcore.app import util as pulp_util

from byhand.exceptions import DefaultReadChanged
from byhand.runbook import parse_runbook
from support import INSTANT, apply, fresh_database, oracle_step, recorded_rows, use_database

ALIAS = "default"
DOMAIN_MADE = "core.0101_add_domain"
#: The manual step of 0101 that makes the default domain (create_default_domain).
DOMAIN_STEP = f"{DOMAIN_MADE}:2"
QUERY = "SELECT pulp_id FROM core_domain WHERE name = 'default'"
#: Backwards, as far as migrate itself goes, a few steps: past the GIN index on
#: pulp_labels (0147) and the domain of task schedules (0153); past every pulp_domain
#: (0102…0145); past the domain itself, its trigger (RunSQL) and the HStoreExtension (0098).
BACKWARDS = ["0146_repository_retain_checkpoints", "0101_add_domain", "0097_remove_telemetry_task_schedule"]

#: The default domain's random UUID differs from database to database, as instants do.
UUID = (re.compile(r"'([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'"), "'<uuid>'")


@pytest.fixture(autouse=True)
def no_role_population() -> Iterator[None]:
    """pulpcore's post_migrate receiver _populate_roles fails after any migrate to a target
    short of the leaves (Permission.DoesNotExist: its roles name permissions of models
    that do not exist yet), after the migrations ran; it writes data, not schema, so it is
    disconnected for this test (byhand never runs receivers; ``byhand post-migrate`` does)."""
    sender = django_apps.get_app_config("core")
    assert post_migrate.disconnect(sender=sender, dispatch_uid="populate_roles_identifier")
    try:
        yield
    finally:
        post_migrate.connect(pulp_apps._populate_roles, sender=sender, dispatch_uid="populate_roles_identifier")


def _forget_cached_domain() -> None:
    """pulpcore caches the default domain in its process (util.default_domain, set by its
    post_migrate receiver _ensure_default_domain after every migrate); get_domain_pk()
    returns the cached one without reading the database. In this one process, migrate on
    A would hand A's domain to byhand writing B's runbook: forget it, as a new process would."""
    pulp_util.default_domain = None


def _domain(settings: dict[str, Any]) -> str:
    with use_database(ALIAS, settings), connections[ALIAS].cursor() as cursor:
        cursor.execute(QUERY)
        return str(cursor.fetchone()[0].hex)


def _copy(source: dict[str, Any], target: dict[str, Any]) -> None:
    """pg_dump of ``source`` (schema and data) restored into the empty ``target``."""
    common = ["-h", source["HOST"], "-p", str(source["PORT"]), "-U", source["USER"]]
    dump = subprocess.run(["pg_dump", *common, source["NAME"]], capture_output=True, check=True)
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *common, "-d", target["NAME"]],
        input=dump.stdout,
        capture_output=True,
        check=True,
    )


def _verify_clean(settings: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    """manage.py byhand verify exits 0 (no drift) and says so."""
    capsys.readouterr()
    with use_database(ALIAS, settings):
        try:
            call_command("byhand", "verify", "--database", ALIAS)
        except SystemExit as exc:  # drift: exit 1
            pytest.fail(f"byhand verify exited {exc.code}: {capsys.readouterr().out}")
    out = capsys.readouterr().out
    assert "no drift" in out, out
    return out


def _defaults_read(path: Path) -> set[str]:
    """The UUIDs the runbook's pulp_domain defaults carry, each under its NOTE naming the query."""
    text = path.read_text()
    assert text.count(f"read the target database when this runbook was made ({QUERY})") > 0
    return set(re.findall(r"\"pulp_domain_id\" uuid DEFAULT '([0-9a-f]{32})'::uuid", text))


@pytest.mark.needs_server
def test_pulpcore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From empty in two runbooks around 0101's manual step, behind, backwards; verify clean."""
    assert connections[ALIAS].vendor == "postgresql", "pulpcore supports PostgreSQL only"
    timings: list[str] = []

    def timed(name: str, *args: str, on: tuple[dict[str, Any], ...]) -> Path:
        start = time.monotonic()
        path = tmp_path / f"{name}.sql"
        _forget_cached_domain()
        try:
            oracle_step(ALIAS, on[0], on[1], path, *args, c=on[2], masks=(INSTANT, UUID))
        except AssertionError as exc:
            raise AssertionError(f"step {name} (byhand sql {' '.join(args)}): {exc}") from exc
        finally:
            timings.append(f"{name:>45}: {time.monotonic() - start:6.1f} s")
        return path

    try:
        with fresh_database(ALIAS) as a, fresh_database(ALIAS) as b, fresh_database(ALIAS) as c:
            # The whole plan is refused: 0101 makes the row the later defaults read.
            refused = tmp_path / "refused.sql"
            with use_database(ALIAS, b), pytest.raises(CommandError) as refusal:
                call_command("byhand", "sql", "--manual-steps", "--database", ALIAS, "-o", str(refused))
            message = str(refusal.value)
            assert not refused.exists()
            assert "alternatecontentsource.pulp_domain in core.0102_add_domain_relations" in message, message
            assert QUERY in message and DOMAIN_MADE in message and "--defaults-from-rehearsal" in message, message
            # The RunPython that makes the row is named, not only the trigger's RunSQL before it.
            assert f"the manual step {DOMAIN_MADE}:2" in message, message

            first = timed("forwards to 0101", "core", "0101_add_domain", on=(a, b, c))
            assert [
                f"{b.migration}:{s.op}"
                for b in parse_runbook(first.read_text()).migrations
                for s in b.steps
                if s.kind == "manual" and b.migration == DOMAIN_MADE
            ] == [DOMAIN_STEP]
            # psql and byhand apply --skip-manual-steps went past it: the operator runs it now.
            for database in (b, c):
                with use_database(ALIAS, database):
                    call_command(
                        "byhand",
                        "run-python",
                        DOMAIN_STEP,
                        "--database",
                        ALIAS,
                        "--force",
                        "psql ran the runbook past this manual step",
                    )
            # The runbook for the rest is written against B and carries B's domain; C's manual
            # step made another random UUID, so apply would refuse it there (shown on the
            # behind databases below): C's domain is given B's UUID (nothing points at it yet).
            with use_database(ALIAS, c), connections[ALIAS].cursor() as cursor:
                cursor.execute("UPDATE core_domain SET pulp_id = %s WHERE name = 'default'", [_domain(b)])
            second = timed("forwards, the rest", on=(a, b, c))
            assert _defaults_read(second) == {_domain(b)}
            with use_database(ALIAS, b):
                assert len(recorded_rows(ALIAS)) == 88  # the squash of 0001-0090 as one row, as migrate writes it
            _verify_clean(a, capsys)

            for target in BACKWARDS:
                timed(f"core back to {target}", "core", target, on=(a, b, c))

        with fresh_database(ALIAS) as a, fresh_database(ALIAS) as b, fresh_database(ALIAS) as c:
            start = time.monotonic()
            for database in (a, b):
                with use_database(ALIAS, database):
                    call_command("migrate", "core", "0101_add_domain", database=ALIAS, verbosity=0)
            # A runbook carries the domain of the database it was written against: the one
            # for the rest written above, applied here, is refused before any change (A's
            # domain is another random UUID).
            with pytest.raises(DefaultReadChanged) as changed:
                apply(second, a, dry_run=True)
            assert "core.0102_add_domain_relations: the default pulpcore.app.util.get_domain_pk() of" in str(
                changed.value
            ), changed.value
            assert f"read {QUERY} when the runbook was written" in str(changed.value), changed.value
            # The runbook written below carries B's domain: C is B's copy.
            _copy(b, c)
            timings.append(f"{'behind: migrate to 0101 x2, copy':>45}: {time.monotonic() - start:6.1f} s")
            behind = timed("behind 0101, the rest", on=(a, b, c))
            assert _defaults_read(behind) == {_domain(b)}
            _verify_clean(a, capsys)
    finally:
        print("\n".join(timings))
