"""Settings of the proof catalogue: DATABASE_URL=postgres://… or mysql://… picks the server.

One app, ``catalogue``, whose migrations are the catalogue: 0001 creates three tables
(author, book, loan) that benchmarks/review_catalogue.py fills with a million rows each,
then every later migration holds one operation, each of another kind.
``django_migration_linter`` is installed when it can be imported (the side-by-side linter).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
# 32-bit keys, so that one entry is the AlterField to BigAutoField a project gets with Django 6.0
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["byhand", "catalogue"]
if importlib.util.find_spec("django_migration_linter") is not None:
    INSTALLED_APPS.append("django_migration_linter")
    MIGRATION_LINTER_OPTIONS = {"no_cache": True}


def database_from_url(url: str) -> dict[str, object]:
    """A DATABASES entry from postgres:// or mysql:// URLs."""
    parts = urlsplit(url)
    engine = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql"}[parts.scheme]
    return {
        "ENGINE": f"django.db.backends.{engine}",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


DATABASES = {
    "default": database_from_url(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/byhand_catalogue"))
}
