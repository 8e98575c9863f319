from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0022_addindex")]
    operations = [migrations.RenameIndex("book", new_name="book_title_ix", old_name="book_title_idx")]
