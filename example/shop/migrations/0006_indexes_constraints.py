import django
from django.db import migrations, models

# CheckConstraint(check=...) became condition= in Django 5.1; check= is gone in 6.0.
_CONDITION = "condition" if django.VERSION >= (5, 1) else "check"


class Migration(migrations.Migration):
    dependencies = [("shop", "0005_rename_publisher")]
    operations = [
        migrations.AddIndex("book", models.Index(fields=["pages"], name="shop_book_pages_idx")),
        migrations.AddConstraint(
            "book", models.CheckConstraint(name="shop_book_pages_gte_0", **{_CONDITION: models.Q(pages__gte=0)})
        ),
        migrations.AddConstraint(
            "book", models.UniqueConstraint(fields=["title", "publisher"], name="shop_book_title_publisher_uniq")
        ),
    ]
