from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0019_alterfield_varchar_to_text")]
    operations = [
        migrations.AlterField("book", "title", models.CharField(max_length=300, db_comment="The title as printed"))
    ]
