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


import pytest  # noqa: E402

from support import fresh_database, require_server, use_database, write_runbook  # noqa: E402


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked needs_server is skipped (failed in CI) while its vendor's server is down."""
    if item.get_closest_marker("needs_server") is not None:
        require_server()


@pytest.fixture(scope="module")
def forwards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's runbook for an empty database of the vendor under test, manual steps written in."""
    require_server()
    path = tmp_path_factory.mktemp("runbooks") / "forwards.sql"
    with fresh_database() as db, use_database("default", db):
        write_runbook("default", path)
    return path
