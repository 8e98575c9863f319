from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0027_addconstraint_partial_unique")]
    operations = [migrations.RemoveConstraint("book", "book_pages_gte_0")]
