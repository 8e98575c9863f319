from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0003_addfield_nullable_default")]
    operations = [migrations.AddField("book", "stock", models.IntegerField(default=0))]
