import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0006_addfield_foreignkey")]
    operations = [
        migrations.AddField(
            "book",
            "profile",
            models.OneToOneField(
                null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="catalogue.author"
            ),
        )
    ]
