import importlib

#: scenarios.online_copy's 0001: shelf, item (referenced by tag's key) and tag, with rows.
Migration = importlib.import_module("scenarios.online_copy.0001_initial").Migration
