from django.db import migrations, models

ROWS = """
INSERT INTO catalog_shelf (name) SELECT 'shelf ' || g FROM generate_series(1, 20) AS g;
INSERT INTO catalog_item (name, qty, shelf_id) SELECT 'item ' || g, g, 1 + g % 20 FROM generate_series(1, 500) AS g;
"""


class Migration(migrations.Migration):
    """Two tables with rows, for the online forms of 0002 to read (PostgreSQL)."""

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
                ("shelf", models.ForeignKey("Shelf", models.CASCADE, null=True, db_constraint=False)),
            ],
        ),
        migrations.RunSQL(ROWS, migrations.RunSQL.noop),
    ]
