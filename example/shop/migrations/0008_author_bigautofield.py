from django.db import migrations, models


class Migration(migrations.Migration):
    # reviews.Review.author points here; reviews does not depend on this migration,
    # so sqlmigrate misses the statements migrate runs for that foreign key.
    dependencies = [("shop", "0007_sql_and_python")]
    operations = [migrations.AlterField("author", "id", models.BigAutoField(primary_key=True, serialize=False))]
