# A RunSQL that names the table (and changes no row of it), then the RunPython that makes
# the row the default of 0003 reads: the refusal must name both, the RunPython above all.
from importlib import import_module

from django.db import migrations

made = import_module("scenarios.reading_default.0002_default_domain")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.RunSQL("UPDATE catalog_domain SET name = name WHERE 1 = 0", migrations.RunSQL.noop),
        migrations.RunPython(made.create_default_domain, made.delete_default_domain),
    ]
