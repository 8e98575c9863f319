from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0040_renamemodel")]
    operations = [migrations.DeleteModel("Loan")]
