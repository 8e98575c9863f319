import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0016_alterfield_db_index")]
    operations = [
        migrations.AlterField(
            "book",
            "author",
            models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, to="catalogue.author"),
        )
    ]
