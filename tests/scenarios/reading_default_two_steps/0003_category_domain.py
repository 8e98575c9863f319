# reading_default's 0003 (a default that reads the row), after this scenario's 0002.
from importlib import import_module

Migration = import_module("scenarios.reading_default.0003_category_domain").Migration
