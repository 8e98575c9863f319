from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Category",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("aisle", models.PositiveSmallIntegerField()),
                ("shelf", models.PositiveIntegerField()),
                ("stock", models.PositiveIntegerField()),
                ("floor", models.IntegerField()),
            ],
        )
    ]
