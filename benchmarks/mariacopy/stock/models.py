"""The table of the MariaDB copy benchmark, as 0001 makes it (each operation's 0002 changes one thing)."""

from __future__ import annotations

from django.db import models


class Item(models.Model):
    code = models.CharField(max_length=32)  # unique values: add_unique
    qty = models.IntegerField()  # int -> bigint: type_change
    amount = models.IntegerField()  # add_index, add_check
    note = models.CharField(max_length=64, null=True)  # no NULLs: set_not_null
    hits = models.IntegerField(default=0)  # what the load's updates change
