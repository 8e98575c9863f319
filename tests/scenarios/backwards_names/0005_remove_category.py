from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_rename_item")]
    operations = [
        migrations.RemoveField("product", "category"),
    ]
