from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0033_renamefield")]
    operations = [migrations.AlterModelTable("loan", "catalogue_lending")]
