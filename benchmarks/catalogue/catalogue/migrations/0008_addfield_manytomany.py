from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0007_addfield_onetoone")]
    operations = [
        migrations.AddField("book", "coauthors", models.ManyToManyField(related_name="+", to="catalogue.author"))
    ]
