"""An index built CONCURRENTLY on PostgreSQL and plainly elsewhere (the example runs on all three)."""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyOnPostgres(AddIndex):
    def describe(self) -> str:
        return "Concurrently create index %s on field(s) %s of model %s" % (
            self.index.name,
            ", ".join(self.index.fields),
            self.model_name,
        )

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        from django.contrib.postgres.operations import AddIndexConcurrently

        concurrent = AddIndexConcurrently(self.model_name, self.index)
        concurrent.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        from django.contrib.postgres.operations import AddIndexConcurrently

        concurrent = AddIndexConcurrently(self.model_name, self.index)
        concurrent.database_backwards(app_label, schema_editor, from_state, to_state)
