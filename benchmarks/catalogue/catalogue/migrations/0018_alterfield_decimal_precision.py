from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0017_alterfield_foreignkey_null")]
    operations = [migrations.AlterField("book", "price", models.DecimalField(decimal_places=2, max_digits=10))]
