from django.db import migrations, models


class Migration(migrations.Migration):
    """SQL of its own that needs the migration's one transaction (a temporary table dropped
    at COMMIT): --online must leave the migration whole, index build included."""

    dependencies = [("catalog", "0002_online")]
    operations = [
        migrations.RunSQL(
            "CREATE TEMPORARY TABLE low_items ON COMMIT DROP AS SELECT id FROM catalog_item WHERE qty < 10;",
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex("item", models.Index(fields=["qty", "name"], name="item_qty_name_idx")),
        migrations.RunSQL(
            "UPDATE catalog_item SET name = name || '!' WHERE id IN (SELECT id FROM low_items);",
            migrations.RunSQL.noop,
        ),
    ]
