from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0026_addconstraint_check")]
    operations = [
        migrations.AddConstraint(
            "book", models.UniqueConstraint(fields=["isbn"], condition=Q(rating__gt=3), name="book_isbn_rated_uniq")
        )
    ]
