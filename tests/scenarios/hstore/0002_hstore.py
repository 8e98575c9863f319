# pulpcore's core.0098_pulp_labels in small: the extension, then a column of its type
# whose default (a dict) is quoted with the adapters the extension brings.
from django.contrib.postgres.fields import HStoreField
from django.contrib.postgres.operations import HStoreExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        HStoreExtension(),
        migrations.AddField("category", "labels", HStoreField(default=dict)),
    ]
