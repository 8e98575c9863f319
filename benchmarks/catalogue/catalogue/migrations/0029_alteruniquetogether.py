from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0028_removeconstraint")]
    operations = [migrations.AlterUniqueTogether("book", {("author", "pages")})]
