from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.RenameIndex("item", new_name="catalog_item_title_tag_idx", old_fields=("title", "tag")),
    ]
