"""The same 0001 as every operation's: ledger/migrations/0001_initial.py."""

from importlib import import_module

Migration = import_module("ledger.migrations.0001_initial").Migration
