from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0024_removeindex")]
    operations = [
        migrations.AddConstraint(
            "book", models.UniqueConstraint(fields=["author", "title"], name="book_author_title_uniq")
        )
    ]
