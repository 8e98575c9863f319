import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0034_altermodeltable")]
    operations = [
        migrations.CreateModel(
            "Shelf",
            [
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("label", models.CharField(max_length=50)),
                ("book", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="catalogue.book")),
            ],
        )
    ]
