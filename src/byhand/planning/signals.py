"""After a by-hand migration: the signals ``migrate`` sends (content types, permissions,
the default site), without planning, applying or recording anything."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState

from byhand.exceptions import PlanError
from byhand.planning.states import project_state
from byhand.runbook import Runbook

__all__ = ["post_migrate_plan", "send_migrate_signals"]


def post_migrate_plan(runbooks: list[Runbook], *, database: str) -> tuple[list[tuple[Migration, bool]], list[str]]:
    """The plan migrate would have given post_migrate had it run these runbooks' migrations:
    each (migration, backwards) in the runbooks' order, for the migrations the database
    has as their runbook leaves them (recorded forwards, not recorded backwards); and the
    others, named, which are left out."""
    connection = connections[database]
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    recorder = MigrationRecorder(connection)
    recorded = set(recorder.applied_migrations()) if recorder.has_table() else set()
    plan: list[tuple[Migration, bool]] = []
    left_out: list[str] = []
    for runbook in runbooks:
        backwards = runbook.direction == "backwards"
        for block in runbook.migrations:
            app, _, name = str(block.migration).partition(".")
            migration = loader.disk_migrations.get((app, name))
            if migration is None:
                raise PlanError(f"{block.migration} is in the runbook but not in this project's migrations.")
            if ((app, name) in recorded) == backwards:
                left_out.append(f"{block.migration} is {'still' if backwards else 'not'} recorded")
                continue
            plan.append((migration, backwards))
    return plan, left_out


def send_migrate_signals(
    *, database: str, verbosity: int, stdout: Any, plan: list[tuple[Migration, bool]] | None = None
) -> None:
    """pre_migrate and post_migrate as ``migrate`` sends them when it has nothing to do
    (content types, permissions, sites), without planning, applying or recording
    anything, without check_replacements and without creating django_migrations.

    ``plan`` (see post_migrate_plan) goes to post_migrate, as migrate passes the plan it
    ran: from Django 6.1, auth's rename_permissions_after_model_rename renames the
    permissions of each RenameModel in it. pre_migrate still gets an empty plan: its
    receivers prepare a plan that is about to run (contenttypes injects its renames, which
    the runbook's manual steps did), and this one has run already."""
    connection = connections[database]
    executor = MigrationExecutor(connection)
    has_table = executor.recorder.has_table()
    state = project_state(executor, with_applied=has_table)
    emit_pre_migrate_signal(verbosity, False, connection.alias, stdout=stdout, apps=state.apps, plan=[])
    # As migrate does before post_migrate: reload delayed models, re-render the real
    # (unmigrated) apps' models so that they carry their relations.
    state.clear_delayed_apps_cache()
    post_apps = state.apps
    with post_apps.bulk_update():
        keys = []
        for model_state in post_apps.real_models:
            keys.append((model_state.app_label, model_state.name_lower))
            post_apps.unregister_model(*keys[-1])
    post_apps.render_multiple([ModelState.from_model(global_apps.get_model(*key)) for key in keys])
    emit_post_migrate_signal(verbosity, False, connection.alias, stdout=stdout, apps=post_apps, plan=plan or [])
