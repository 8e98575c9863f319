# pulpcore's pulp_domain in small (core.0101 creates the "default" domain in a RunPython;
# 0102 adds a foreign key whose callable default reads that row's primary key).
from django.db import connection, migrations, models


def default_domain_pk():
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM catalog_domain WHERE name = %s", ["default"])
        return cursor.fetchone()[0]


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_default_domain")]
    operations = [
        migrations.AddField(
            "category",
            "domain",
            models.ForeignKey("catalog.Domain", on_delete=models.PROTECT, default=default_domain_pk),
        ),
    ]
