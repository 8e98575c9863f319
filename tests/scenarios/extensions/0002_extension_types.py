# Columns of types that extensions make (hstore, citext): each database that runs
# CREATE EXTENSION gives them new OIDs, so the target and verify's scratch copy differ
# in OIDs while the types are the same.
from django.contrib.postgres.fields import HStoreField
from django.contrib.postgres.operations import CITextExtension, HStoreExtension
from django.db import migrations, models


class CITextField(models.TextField):
    """citext, as the CITextField that Django 5.1 removed (historical migrations still make it)."""

    def db_type(self, connection):
        return "citext"


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        HStoreExtension(),
        CITextExtension(),
        migrations.AddField("category", "labels", HStoreField(default=dict)),
        migrations.AddField("category", "email", CITextField(null=True)),
    ]
