from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Category",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("a", models.IntegerField()),
                ("b", models.IntegerField()),
                ("c", models.IntegerField()),
                ("d", models.IntegerField()),
            ],
        ),
        migrations.AlterUniqueTogether("Category", {("a", "b"), ("c", "d")}),
    ]
