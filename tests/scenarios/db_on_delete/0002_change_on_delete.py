from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        # database-level to another database-level action: the FK is dropped and made again
        migrations.AlterField(
            "item", "shelf", models.ForeignKey("catalog.Shelf", models.DB_SET_NULL, null=True, related_name="+")
        ),
        # database-level to Python-level: ON DELETE goes away
        migrations.AlterField(
            "item", "spare", models.ForeignKey("catalog.Shelf", models.SET_NULL, null=True, related_name="+")
        ),
        # a new column with its FK (inline on PostgreSQL and MySQL)
        migrations.AddField(
            "item", "extra", models.ForeignKey("catalog.Shelf", models.DB_CASCADE, null=True, related_name="+")
        ),
    ]
