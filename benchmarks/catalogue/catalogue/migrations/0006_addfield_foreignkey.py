import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0005_addfield_db_default")]
    operations = [
        migrations.AddField(
            "book",
            "editor",
            models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="catalogue.author"
            ),
        )
    ]
