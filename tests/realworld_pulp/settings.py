"""Minimal settings for pulpcore's migrations (tests/realworld_pulp, see README.md).

pulpcore's own settings (pulpcore/app/settings.py) are a dynaconf module that loads every
installed plugin by entry point, reads /etc/pulp and checks an encryption key file. None of
that is needed to load its models and run its migrations: the Django apps it lists, the
few settings its app config, models, viewsets and migrations read, and a PostgreSQL
database (pulpcore supports no other) from DATABASE_URL, as in tests/realworld/settings.py.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from realworld.settings import database_from_url

SECRET_KEY = "realworld-pulp-tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ROOT_URLCONF = "realworld.urls"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "import_export",
    "django_filters",
    "django_guid",
    "drf_spectacular",
    "rest_framework",
    "pulpcore.app",
    "byhand",
]

_DEPLOY = Path(tempfile.gettempdir()) / "byhand_realworld_pulp"
MEDIA_ROOT = str(_DEPLOY / "media")
STATIC_URL = "/assets/"
STORAGES = {
    "default": {"BACKEND": "pulpcore.app.models.storage.FileSystem"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WORKING_DIRECTORY = _DEPLOY / "tmp"
DB_ENCRYPTION_KEY = str(_DEPLOY / "database_fields.symmetric.key")

# What pulpcore's app config, models and viewsets read at import (pulpcore's defaults).
API_ROOT = "/pulp/"
API_ROOT_REWRITE_HEADER = None
V3_API_ROOT = "/pulp/api/v3/"
V3_DOMAIN_API_ROOT = "/pulp/<slug:pulp_domain>/api/v3/"
V3_API_ROOT_NO_FRONT_SLASH = "pulp/api/v3/"
V3_DOMAIN_API_ROOT_NO_FRONT_SLASH = "pulp/<slug:pulp_domain>/api/v3/"
CONTENT_ORIGIN = None
CONTENT_PATH_PREFIX = "/pulp/content/"
DOMAIN_ENABLED = False
ENABLE_V4_API = False
HIDE_GUARDED_DISTRIBUTIONS = False
REDIRECT_TO_OBJECT_STORAGE = True
CACHE_ENABLED = False
ALLOWED_CONTENT_CHECKSUMS = ["sha224", "sha256", "sha384", "sha512"]
FORBIDDEN_CHECKSUMS = ["md5", "sha1"]
ACCESS_POLICIES: dict[str, object] = {}
DRF_ACCESS_POLICY = {"reusable_conditions": ["pulpcore.app.global_access_conditions"]}
REST_FRAMEWORK = {
    "URL_FIELD_NAME": "pulp_href",
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "DEFAULT_SCHEMA_CLASS": "pulpcore.openapi.PulpAutoSchema",
}

_URL = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/byhand_example"
DATABASES = {"default": database_from_url(_URL)}
OTEL_ENABLED = False
CACHE_SETTINGS = {"EXPIRES_TTL": 600}
API_APP_TTL = 120  # The heartbeat is called from gunicorn notify (defaulting to 45 sec).
CONTENT_APP_TTL = 30
WORKER_TTL = 30
KAFKA_BOOTSTRAP_SERVERS = None  # kafka integration disabled by default
ORPHAN_PROTECTION_TIME = 24 * 60
