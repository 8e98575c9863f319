# The same models as reading_default; only the step that makes the row differs.
from importlib import import_module

Migration = import_module("scenarios.reading_default.0001_initial").Migration
