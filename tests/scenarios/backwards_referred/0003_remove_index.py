from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_rename_back")]
    operations = [migrations.RemoveIndex("item", "catalog_item_title_idx")]
