from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.CreateModel(
            "Review",
            [
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("author", models.ForeignKey(on_delete=models.CASCADE, to="shop.author")),
                ("text", models.TextField()),
            ],
        )
    ]
