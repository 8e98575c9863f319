from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.AddConstraint(
            model_name="entry", constraint=models.UniqueConstraint(fields=["code"], name="ledger_entry_code_uniq")
        ),
    ]
