# Django 6.0+: a squash of a squash (squashmigrations no longer refuses; its replaces name
# the inner squash, and migrate records the inner squash's replaced migrations too).
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("catalog", "0001_squashed_0003_alter_category_slug"), ("catalog", "0004_category_parent")]
    initial = True
    operations = [
        migrations.CreateModel(
            "Category",
            [
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
                ("slug", models.SlugField(max_length=50)),
                ("parent", models.ForeignKey(null=True, on_delete=models.SET_NULL, to="catalog.category")),
            ],
        )
    ]
