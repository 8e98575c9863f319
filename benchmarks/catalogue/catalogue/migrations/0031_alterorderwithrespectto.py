from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0030_alterindextogether")]
    operations = [migrations.AlterOrderWithRespectTo("loan", "book")]
