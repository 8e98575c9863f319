from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0021_alterfield_db_default")]
    operations = [migrations.AddIndex("book", models.Index(fields=["title"], name="book_title_idx"))]
