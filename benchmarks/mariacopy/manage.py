#!/usr/bin/env python
"""The MariaDB copy benchmark project's manage.py (see benchmarks/mariadb_copy.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mariacopyproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
