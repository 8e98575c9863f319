from django.db import migrations, models
from django.db.models.functions import Now


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0004_addfield_notnull_default")]
    operations = [migrations.AddField("book", "created", models.DateTimeField(db_default=Now()))]
