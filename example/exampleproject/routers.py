"""The archive app lives in the "archive" database, everything else in "default"."""

from __future__ import annotations

from typing import Any


class ArchiveRouter:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        if app_label == "archive":
            return db == "archive"
        return db == "default"
