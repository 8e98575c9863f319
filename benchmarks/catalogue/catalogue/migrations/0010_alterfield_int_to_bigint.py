from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0009_addfield_generated_stored")]
    operations = [migrations.AlterField("loan", "day", models.BigIntegerField())]
