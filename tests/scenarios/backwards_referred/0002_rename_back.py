# Going back, this migration gives 0001's index another name, as a project's own
# backwards code may: the name the migrations give it is gone, and 0003 finds it by that name.
from django.db import migrations, models


def rename_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    item = apps.get_model("catalog", "Item")
    old = models.Index(fields=["title"], name="catalog_item_title_idx")
    schema_editor.rename_index(item, old, models.Index(fields=["title"], name="catalog_item_title_old"))


class Migration(migrations.Migration):
    atomic = False  # DDL from RunPython: MySQL/MariaDB refuse it in a transaction
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(migrations.RunPython.noop, rename_index)]
