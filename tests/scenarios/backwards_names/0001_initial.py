from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Category", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        migrations.CreateModel(
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("title", models.CharField(max_length=50)),
                ("tag", models.CharField(max_length=20)),
                ("code", models.CharField(max_length=20, unique=True)),
                ("category", models.ForeignKey("catalog.Category", models.CASCADE)),
            ],
        ),
        migrations.AlterIndexTogether("item", {("title", "tag")}),
    ]
