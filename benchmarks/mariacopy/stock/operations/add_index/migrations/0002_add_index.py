from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stock", "0001_initial")]

    operations = [
        migrations.AddIndex(model_name="item", index=models.Index(fields=["amount"], name="stock_item_amount_idx")),
    ]
