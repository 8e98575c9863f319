from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0037_removeindexconcurrently")]
    operations = [migrations.RemoveField("book", "editor")]
