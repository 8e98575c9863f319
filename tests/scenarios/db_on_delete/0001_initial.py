# Django 6.1+: database-level on_delete (DB_CASCADE, DB_SET_NULL, DB_SET_DEFAULT).
from django.db import connection, migrations, models

#: MySQL/MariaDB have no ON DELETE SET DEFAULT (supports_on_delete_db_default is False).
SET_DEFAULT = connection.features.supports_on_delete_db_default


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Shelf", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        migrations.CreateModel(
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("shelf", models.ForeignKey("catalog.Shelf", models.DB_CASCADE, related_name="+")),
                ("spare", models.ForeignKey("catalog.Shelf", models.DB_SET_NULL, null=True, related_name="+")),
            ]
            + (
                [("home", models.ForeignKey("catalog.Shelf", models.DB_SET_DEFAULT, db_default=1, related_name="+"))]
                if SET_DEFAULT
                else []
            ),
        ),
    ]
