from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Item", [("id", models.BigAutoField(primary_key=True)), ("title", models.CharField(max_length=50))]
        ),
        migrations.AddIndex("item", models.Index(fields=["title"], name="catalog_item_title_idx")),
    ]
