from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0013_alterfield_null_to_not_null")]
    operations = [migrations.AlterField("book", "rating", models.IntegerField(null=True))]
