from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0039_alterfield_pk_bigautofield")]
    operations = [migrations.RenameModel("Book", "Volume")]
