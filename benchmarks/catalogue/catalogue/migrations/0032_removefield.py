from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0031_alterorderwithrespectto")]
    operations = [migrations.RemoveField("book", "subtitle")]
