from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [
        migrations.AddField(model_name="item", name="note", field=models.CharField(max_length=200, null=True)),
    ]
