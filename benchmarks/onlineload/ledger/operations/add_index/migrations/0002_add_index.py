from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        migrations.AddIndex(model_name="entry", index=models.Index(fields=["amount"], name="ledger_entry_amount_idx")),
    ]
