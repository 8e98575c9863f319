# reading_default's 0003 (a default that reads the row), after the RunSQL that makes it.
from importlib import import_module


class Migration(import_module("scenarios.reading_default.0003_category_domain").Migration):
    dependencies = [("catalog", "0002_default_domain_sql")]
