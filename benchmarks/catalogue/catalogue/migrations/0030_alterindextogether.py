from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0029_alteruniquetogether")]
    operations = [migrations.AlterIndexTogether("book", {("rating", "pages")})]
