"""The same 0001 as every operation's: stock/migrations/0001_initial.py."""

from importlib import import_module

Migration = import_module("stock.migrations.0001_initial").Migration
