from django.db import connection, migrations, models

#: On MariaDB, RunSQL that names its own ALGORITHM and LOCK, and an ALTER IGNORE TABLE.
if connection.vendor == "mysql":
    RUN_SQL = [
        migrations.RunSQL("ALTER TABLE catalog_category ADD COLUMN note int, ALGORITHM=COPY, LOCK=SHARED"),
        migrations.RunSQL("ALTER IGNORE TABLE catalog_category ADD UNIQUE INDEX catalog_category_name_uniq (name)"),
    ]
elif connection.vendor == "postgresql":  # a table of another schema, and one of the same name in this one
    RUN_SQL = [
        migrations.RunSQL("CREATE SCHEMA other; CREATE TABLE other.catalog_category (id int, name varchar(50))"),
        migrations.RunSQL("ALTER TABLE other.catalog_category ALTER COLUMN id TYPE bigint"),
    ]
else:
    RUN_SQL = []


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Category", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        *RUN_SQL,
    ]
