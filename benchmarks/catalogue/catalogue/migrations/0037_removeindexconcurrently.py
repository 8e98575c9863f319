"""RemoveIndexConcurrently (PostgreSQL only: on other vendors the migration is empty)."""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import connection, migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("catalogue", "0036_addindexconcurrently")]
    operations = [RemoveIndexConcurrently("book", "book_pages_idx")] if connection.vendor == "postgresql" else []
