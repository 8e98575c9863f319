from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_alter_category_slug")]
    operations = [
        migrations.AddField(
            "category", "parent", models.ForeignKey(null=True, on_delete=models.SET_NULL, to="catalog.category")
        )
    ]
