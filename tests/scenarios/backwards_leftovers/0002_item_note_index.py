# What an ordinary `migrate catalog 0001` leaves behind of this migration:
# - MariaDB/MySQL: the index starts with the foreign key's column, so InnoDB drops the
#   foreign key's own index (the new one serves it); going back, Django's MySQL schema
#   editor creates an index on the column before it drops the new one, and leaves it;
# - every vendor: the index RunSQL makes, reversed by noop (no operation here makes
#   SQLite rebuild the table, which would drop it).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.AddField("item", "note", models.CharField(max_length=20, default="")),
        migrations.AddIndex("item", models.Index(fields=["category", "title"], name="catalog_item_cat_title_idx")),
        migrations.RunSQL("CREATE INDEX catalog_item_title_idx ON catalog_item (title)", migrations.RunSQL.noop),
    ]
