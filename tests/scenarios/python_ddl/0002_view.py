from django.db import migrations


def create_view(apps, schema_editor):
    schema_editor.execute("CREATE VIEW catalog_names AS SELECT name FROM catalog_category")


def drop_view(apps, schema_editor):
    schema_editor.execute("DROP VIEW catalog_names")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    # atomic=False: MySQL refuses DDL inside the transaction Django opens for a RunPython.
    operations = [migrations.RunPython(create_view, drop_view, atomic=False)]
