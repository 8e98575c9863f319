from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("stock", "0001_initial")]

    operations = [
        migrations.AddConstraint(
            model_name="item", constraint=models.UniqueConstraint(fields=["code"], name="stock_item_code_uniq")
        ),
    ]
