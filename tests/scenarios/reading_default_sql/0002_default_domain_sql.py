from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "INSERT INTO catalog_domain (name) VALUES ('default')", "DELETE FROM catalog_domain WHERE name = 'default'"
        )
    ]
