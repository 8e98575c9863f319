from django.db import migrations, models


class Migration(migrations.Migration):
    """What MariaDB 10.11 copies the table for (a type change, NOT NULL, a CHECK, a foreign
    key), beside what it does in place (an index), on tables with rows."""

    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.AlterField("item", "qty", models.BigIntegerField(null=True)),
        migrations.AlterField("item", "name", models.CharField(max_length=50, default="")),
        migrations.AddConstraint("item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="item_qty_gte_0")),
        migrations.AddIndex("item", models.Index(fields=["qty"], name="item_qty_idx")),
        migrations.AlterField("tag", "label", models.CharField(max_length=80)),
    ]
