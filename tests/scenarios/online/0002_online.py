from django.db import migrations, models


class Migration(migrations.Migration):
    """Every statement PostgreSQL has an online form for, on a table that has rows."""

    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["qty"], name="item_qty_idx")),
        migrations.AddConstraint("item", models.UniqueConstraint(fields=["name"], name="item_name_uniq")),
        migrations.AddConstraint(
            "item", models.UniqueConstraint(fields=["qty"], name="item_qty_uniq", nulls_distinct=False)
        ),
        migrations.AddConstraint("item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="item_qty_gte_0")),
        migrations.AlterField("item", "name", models.CharField(max_length=50, db_index=True)),
        migrations.AlterField("item", "shelf", models.ForeignKey("Shelf", models.CASCADE, null=True)),
        migrations.AddField("shelf", "code", models.CharField(max_length=10, null=True, unique=True)),
    ]
