"""tests/realworld runs only in its own pytest invocation, with its own settings:

    DJANGO_SETTINGS_MODULE=realworld.settings python -m pytest tests/realworld

tests/conftest.py (loaded first, as the parent directory's conftest) puts tests/ on
sys.path and calls django.setup() with DJANGO_SETTINGS_MODULE, which it only
defaults to the example project. When the settings in use are not these (the normal
``python -m pytest tests`` run), nothing here is collected: the example project has
none of the third-party apps this test migrates.
"""

from __future__ import annotations

import os

SETTINGS = "realworld.settings"

collect_ignore_glob = [] if os.environ.get("DJANGO_SETTINGS_MODULE") == SETTINGS else ["*"]
