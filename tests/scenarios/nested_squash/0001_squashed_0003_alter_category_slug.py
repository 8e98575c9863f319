from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("catalog", "0001_initial"), ("catalog", "0002_category_slug"), ("catalog", "0003_alter_category_slug")]
    initial = True
    operations = [
        migrations.CreateModel(
            "Category",
            [
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
                ("slug", models.SlugField(max_length=50)),
            ],
        )
    ]
