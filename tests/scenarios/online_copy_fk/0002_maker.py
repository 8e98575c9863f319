from django.db import migrations, models


class Migration(migrations.Migration):
    """A foreign key added to item, which tag's key references: MariaDB copies item for it
    (foreign_key_checks on), and pt-online-schema-change then re-points tag's key."""

    dependencies = [("catalog", "0001_initial")]
    operations = [
        migrations.AddField("item", "maker", models.ForeignKey("Shelf", models.PROTECT, null=True, related_name="+")),
    ]
