#!/usr/bin/env python
"""The online-load benchmark project's manage.py (see benchmarks/online_load.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineloadproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
