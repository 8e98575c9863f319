from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.AlterField(model_name="entry", name="note", field=models.CharField(max_length=64)),
    ]
