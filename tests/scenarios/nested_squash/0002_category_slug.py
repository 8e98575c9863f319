from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.AddField("category", "slug", models.CharField(default="", max_length=50))]
