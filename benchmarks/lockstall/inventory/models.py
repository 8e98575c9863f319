"""The one table of the lock-stall benchmark, as migration 0002 leaves it."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    sku = models.CharField(max_length=32)
    quantity = models.IntegerField()
    note = models.CharField(max_length=200, null=True)
