"""Settings of the online-load benchmark project: DATABASE_URL=postgres://… names the database.

One app, ``ledger``: 0001 creates a small table of accounts and a big table of entries,
which the benchmark fills. Each operation measured is a 0002 of its own, in a migrations
package of its own, so that every one starts from the same 0001:
ONLINELOAD_OPERATION=add_index picks ``ledger/operations/add_index/migrations`` (see OPERATIONS).
ONLINELOAD_ENGINE replaces the database ENGINE (django-pg-zero-downtime-migrations'
backend, for that contender).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["byhand", "ledger"]
OPERATIONS = ("add_index", "add_unique", "add_fk", "set_not_null", "add_check")


def database_from_url(url: str) -> dict[str, object]:
    """A DATABASES entry from a postgres:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL: the online-load benchmark runs on PostgreSQL only, not {parts.scheme!r}")
    return {
        "ENGINE": os.environ.get("ONLINELOAD_ENGINE") or "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1/onlineload")}

_operation = os.environ.get("ONLINELOAD_OPERATION")
if _operation:
    if _operation not in OPERATIONS:
        raise ValueError(f"ONLINELOAD_OPERATION={_operation!r}: use one of {', '.join(OPERATIONS)}")
    MIGRATION_MODULES = {"ledger": f"ledger.operations.{_operation}.migrations"}
