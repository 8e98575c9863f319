"""After a by-hand migration: the signals ``migrate`` sends (content types, permissions,
the default site), without planning, applying or recording anything."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ModelState

from byhand.planning.states import project_state

__all__ = ["send_migrate_signals"]


def send_migrate_signals(*, database: str, verbosity: int, stdout: Any) -> None:
    """pre_migrate and post_migrate as ``migrate`` sends them when it has nothing to do
    (content types, permissions, sites), without planning, applying or recording
    anything, without check_replacements and without creating django_migrations."""
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
    emit_post_migrate_signal(verbosity, False, connection.alias, stdout=stdout, apps=post_apps, plan=[])
