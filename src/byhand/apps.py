"""The Django app: add "byhand" to INSTALLED_APPS to get the ``byhand`` management command."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ByhandConfig"]


class ByhandConfig(AppConfig):
    name = "byhand"
    verbose_name = "byhand"
    default = True
