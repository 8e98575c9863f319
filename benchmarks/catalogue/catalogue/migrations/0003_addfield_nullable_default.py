from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0002_addfield_nullable")]
    operations = [migrations.AddField("book", "discount", models.IntegerField(null=True, default=5))]
