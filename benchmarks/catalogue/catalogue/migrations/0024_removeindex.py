from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0023_renameindex")]
    operations = [migrations.RemoveIndex("book", "book_title_ix")]
