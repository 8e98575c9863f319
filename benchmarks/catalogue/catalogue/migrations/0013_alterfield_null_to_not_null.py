from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0012_alterfield_varchar_shorter")]
    operations = [migrations.AlterField("author", "email", models.CharField(max_length=254))]
