"""The tables of the online-load benchmark, as 0001 makes them (each operation's 0002 changes one thing)."""

from __future__ import annotations

from django.db import models


class Account(models.Model):
    name = models.CharField(max_length=32)


class Entry(models.Model):
    account = models.ForeignKey(Account, on_delete=models.DO_NOTHING, db_constraint=False)
    code = models.CharField(max_length=32)  # unique values: add_unique
    amount = models.IntegerField()  # add_index, add_check
    note = models.CharField(max_length=64, null=True)  # no NULLs: set_not_null
    hits = models.IntegerField(default=0)  # what the load's updates change
