"""Example settings: SQLite by default; DATABASE_URL=postgres://… or mysql://… switches vendor.

Two aliases: "default" (every app but archive) and "archive" (only the archive
app, by the router below), each with its own django_migrations.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "byhand",
    "shop",
    "reviews",
    "catalog",
    "archive",
]
DATABASE_ROUTERS = ["exampleproject.routers.ArchiveRouter"]


def database_from_url(url: str, *, suffix: str = "") -> dict[str, object]:
    """A DATABASES entry from postgres://, mysql:// or sqlite:/// URLs."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:])  # sqlite:///relative or sqlite:////absolute, as byhand apply reads them
        stem = Path(path)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(stem.with_stem(stem.stem + suffix))}
    engine = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql"}[parts.scheme]
    return {
        "ENGINE": f"django.db.backends.{engine}",
        "NAME": unquote(parts.path.lstrip("/")) + suffix,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": database_from_url(_URL),
    "archive": database_from_url(_URL, suffix="_archive"),
}
