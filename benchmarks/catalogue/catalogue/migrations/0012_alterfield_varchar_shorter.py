from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0011_alterfield_varchar_longer")]
    operations = [migrations.AlterField("author", "name", models.CharField(max_length=80))]
