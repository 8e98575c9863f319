from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0004_book_changes")]
    operations = [migrations.RenameModel("Publisher", "Imprint")]
