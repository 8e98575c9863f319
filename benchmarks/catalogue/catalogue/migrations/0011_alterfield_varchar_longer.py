from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0010_alterfield_int_to_bigint")]
    operations = [migrations.AlterField("book", "title", models.CharField(max_length=300))]
