# The same models as reading_default; its 0002 makes the row in its second operation.
from importlib import import_module

Migration = import_module("scenarios.reading_default.0001_initial").Migration
