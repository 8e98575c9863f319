from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0025_addconstraint_unique")]
    operations = [
        migrations.AddConstraint("book", models.CheckConstraint(condition=Q(pages__gte=0), name="book_pages_gte_0"))
    ]
