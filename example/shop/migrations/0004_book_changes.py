from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_rename_unnamed_index")]
    operations = [
        migrations.AddField("book", "pages", models.IntegerField(null=True)),
        migrations.AddField("book", "promo", models.CharField(default="50% off", max_length=50)),
        migrations.AlterField(
            "book", "author", models.ForeignKey(null=True, on_delete=models.CASCADE, to="shop.author")
        ),
        migrations.AlterField("book", "code", models.CharField(max_length=20)),
        migrations.AlterField("author", "name", models.CharField(max_length=100)),
        migrations.RemoveField("book", "editor"),
        migrations.AlterUniqueTogether("book", set()),
    ]
