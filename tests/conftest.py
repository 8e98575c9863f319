"""Test set-up: the example project's settings, the vendor chosen by DATABASE_URL.

In CI (CI=true) a test that needs the PostgreSQL or MariaDB server fails when the
server cannot be reached; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "example"), str(ROOT / "tests")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")

import django  # noqa: E402

django.setup()
