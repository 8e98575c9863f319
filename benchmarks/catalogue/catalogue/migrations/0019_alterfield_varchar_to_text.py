from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0018_alterfield_decimal_precision")]
    operations = [migrations.AlterField("loan", "note", models.TextField())]
