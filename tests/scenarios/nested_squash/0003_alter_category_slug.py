from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_category_slug")]
    operations = [migrations.AlterField("category", "slug", models.SlugField(max_length=50))]
