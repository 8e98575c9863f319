from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="document",
            index=models.Index(fields=["title", "slug"], name="archive_doc_title_slug_idx"),
        ),
    ]
