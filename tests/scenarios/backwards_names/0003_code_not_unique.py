from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_rename_index")]
    operations = [
        migrations.AlterField("item", "code", models.CharField(max_length=20)),
    ]
