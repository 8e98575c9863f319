from django.db import migrations, models

ROWS = """
INSERT INTO catalog_shelf (id, name) SELECT seq, CONCAT('shelf ', seq) FROM seq_1_to_20;
INSERT INTO catalog_item (id, name, qty, shelf_id) SELECT seq, CONCAT('item ', seq), seq, 1 + seq % 20 FROM seq_1_to_500;
INSERT INTO catalog_tag (id, label, item_id) SELECT seq, CONCAT('tag ', seq), 1 + seq % 500 FROM seq_1_to_300;
"""


class Migration(migrations.Migration):
    """Three tables with rows (MariaDB): item has a foreign key of its own and is referenced
    by tag's, for the copies of 0002 to rename and re-point. The ids are given: a run killed
    after an INSERT and run again must not depend on AUTO_INCREMENT, which no rollback undoes."""

    initial = True
    operations = [
        migrations.CreateModel(
            "Shelf", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        migrations.CreateModel(
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=50, null=True)),
                ("qty", models.IntegerField(null=True)),
                ("shelf", models.ForeignKey("Shelf", models.CASCADE, null=True)),
            ],
        ),
        migrations.CreateModel(
            "Tag",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("label", models.CharField(max_length=50)),
                ("item", models.ForeignKey("Item", models.CASCADE)),
            ],
        ),
        migrations.RunSQL(ROWS, migrations.RunSQL.noop),
    ]
