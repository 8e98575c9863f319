from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]
    operations = [migrations.AddField("entry", "note", models.CharField(default="", max_length=200))]
