from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_book_index_together")]
    operations = [migrations.RenameIndex("book", new_name="shop_book_title_code_idx", old_fields=("title", "code"))]
