"""tests/realworld_pulp runs only in its own pytest invocation, with its own settings:

    DJANGO_SETTINGS_MODULE=realworld_pulp.settings python -m pytest tests/realworld_pulp

as tests/realworld does (see its conftest.py): with any other settings nothing here is
collected (the example project has no pulpcore).
"""

from __future__ import annotations

import os

SETTINGS = "realworld_pulp.settings"

collect_ignore_glob = [] if os.environ.get("DJANGO_SETTINGS_MODULE") == SETTINGS else ["*"]
