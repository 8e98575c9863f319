"""Settings of the MariaDB index-build benchmark project: DATABASE_URL=mysql://… names the database.

One app, ``archive``: 0001 creates a table of documents with two wide text columns,
which the benchmark fills; 0002 adds an index on both (an AddIndex, built in place).
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
INSTALLED_APPS = ["byhand", "archive"]


def database_from_url(url: str) -> dict[str, object]:
    """A DATABASES entry from a mysql:// URL."""
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise ValueError(f"DATABASE_URL: the index-build benchmark runs on MariaDB only, not {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": {"charset": "utf8mb4"},
    }


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL") or "mysql://root@127.0.0.1:3306/mariabuild")}
