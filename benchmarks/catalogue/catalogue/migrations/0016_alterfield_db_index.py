from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0015_alterfield_unique")]
    operations = [migrations.AlterField("author", "born", models.IntegerField(db_index=True))]
