from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0032_removefield")]
    operations = [migrations.RenameField("book", "stock", "quantity")]
