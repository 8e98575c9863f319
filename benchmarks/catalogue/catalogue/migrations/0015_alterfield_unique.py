from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0014_alterfield_not_null_to_null")]
    operations = [migrations.AlterField("author", "code", models.CharField(max_length=40, unique=True))]
