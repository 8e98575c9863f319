#!/usr/bin/env python
"""The MariaDB index-build benchmark project's manage.py (see benchmarks/mariadb_build.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mariabuildproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
