from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0038_removefield_foreignkey")]
    operations = [
        migrations.AlterField(
            "author", "id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")
        )
    ]
