from django.db import migrations, models


class Migration(migrations.Migration):
    """LOCK TABLE outside a transaction block: PostgreSQL refuses it under migrate."""

    initial = True
    atomic = False
    operations = [
        migrations.CreateModel(
            "Category", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        migrations.RunSQL("LOCK TABLE catalog_category IN ACCESS EXCLUSIVE MODE"),
    ]
