from django.db import migrations, models
from django.db.models import F


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0008_addfield_manytomany")]
    operations = [
        migrations.AddField(
            "book",
            "pages_x2",
            models.GeneratedField(expression=F("pages") * 2, output_field=models.IntegerField(), db_persist=True),
        )
    ]
