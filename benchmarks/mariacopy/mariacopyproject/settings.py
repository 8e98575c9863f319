"""Settings of the MariaDB copy benchmark project: DATABASE_URL=mysql://… names the database.

One app, ``stock``: 0001 creates a table of items, which the benchmark fills. Each
operation measured is a 0002 of its own, in a migrations package of its own, so that every
one starts from the same 0001: MARIACOPY_OPERATION=type_change picks
``stock/operations/type_change/migrations`` (see OPERATIONS).
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
INSTALLED_APPS = ["byhand", "stock"]
OPERATIONS = ("type_change", "set_not_null", "add_check", "add_index", "add_unique")

_url = urlsplit(os.environ.get("DATABASE_URL") or "mysql://root@127.0.0.1:3306/mariacopy")
if _url.scheme != "mysql":
    raise ValueError(f"DATABASE_URL: the copy benchmark runs on MariaDB only, not {_url.scheme!r}")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "OPTIONS": {"charset": "utf8mb4"},
    }
}

_operation = os.environ.get("MARIACOPY_OPERATION")
if _operation:
    if _operation not in OPERATIONS:
        raise ValueError(f"MARIACOPY_OPERATION={_operation!r}: use one of {', '.join(OPERATIONS)}")
    MIGRATION_MODULES = {"stock": f"stock.operations.{_operation}.migrations"}
