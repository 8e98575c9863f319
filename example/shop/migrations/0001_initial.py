from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            "Author",
            [
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100, unique=True)),
            ],
        ),
        migrations.CreateModel(
            "Publisher",
            [("id", models.AutoField(primary_key=True, serialize=False)), ("name", models.CharField(max_length=100))],
        ),
        migrations.CreateModel(
            "Book",
            [
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("title", models.CharField(max_length=200)),
                ("code", models.CharField(max_length=20, unique=True)),
                ("author", models.ForeignKey(on_delete=models.CASCADE, to="shop.author")),
                (
                    "editor",
                    models.ForeignKey(
                        null=True, on_delete=models.SET_NULL, related_name="edited_books", to="shop.author"
                    ),
                ),
                ("publisher", models.ForeignKey(null=True, on_delete=models.SET_NULL, to="shop.publisher")),
            ],
            options={"unique_together": {("title", "author")}},
        ),
    ]
