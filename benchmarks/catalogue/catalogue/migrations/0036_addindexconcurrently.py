"""AddIndexConcurrently (PostgreSQL only: on other vendors the migration is empty)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import connection, migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("catalogue", "0035_createmodel_fk")]
    operations = (
        [AddIndexConcurrently("book", models.Index(fields=["pages"], name="book_pages_idx"))]
        if connection.vendor == "postgresql"
        else []
    )
