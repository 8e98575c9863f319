#!/usr/bin/env python
"""The proof catalogue's manage.py (see benchmarks/review_catalogue.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalogueproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
