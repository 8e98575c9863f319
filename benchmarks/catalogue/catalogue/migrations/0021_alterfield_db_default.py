from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0020_alterfield_db_comment")]
    operations = [migrations.AlterField("book", "rating", models.IntegerField(null=True, db_default=3))]
