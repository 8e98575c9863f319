from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_code_not_unique")]
    operations = [
        migrations.RenameModel("Item", "Product"),
    ]
