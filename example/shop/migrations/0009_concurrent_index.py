from django.db import migrations, models

from shop.operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0008_author_bigautofield")]
    operations = [AddIndexConcurrentlyOnPostgres("book", models.Index(fields=["promo"], name="shop_book_promo_idx"))]
