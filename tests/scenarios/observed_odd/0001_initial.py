from django.db import connection, migrations, models

#: Statements the rehearsal cannot observe faithfully, or whose table only the server can name.
if connection.vendor == "mysql":
    RUN_SQL = [
        # A comment (kept by the list form) leaves no place for a probe's clause; LOCK= alone
        # leaves the algorithm to the server; ORDER BY takes no ALGORITHM clause.
        migrations.RunSQL(["ALTER TABLE catalog_category MODIFY name varchar(40) NOT NULL -- shorter"]),
        migrations.RunSQL("ALTER TABLE catalog_category MODIFY name varchar(30) NOT NULL, LOCK=SHARED"),
        migrations.RunSQL("ALTER TABLE catalog_category ORDER BY name"),
    ]
elif connection.vendor == "postgresql":
    RUN_SQL = [
        migrations.RunSQL(
            "CREATE SCHEMA other; CREATE TABLE other.catalog_category (id int, name varchar(50)); "
            'CREATE TABLE "MixedCase" (val int); CREATE TABLE mixedcase (val int)'
        ),
        # Its own transaction: the locks would be read after its COMMIT.
        migrations.RunSQL("begin; ALTER TABLE catalog_category ALTER COLUMN name TYPE varchar(80); commit;"),
        # Tables only the server names: another schema's, an unquoted name folded to lower case.
        migrations.RunSQL("CREATE INDEX CONCURRENTLY other_category_name ON other.catalog_category (name)"),
        migrations.RunSQL("CREATE INDEX CONCURRENTLY mixed_val ON MixedCase (val)"),
        migrations.RunSQL("DROP INDEX CONCURRENTLY other.other_category_name"),
    ]
else:
    RUN_SQL = []


class Migration(migrations.Migration):
    initial = True
    atomic = False
    operations = [
        migrations.CreateModel(
            "Category", [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=50))]
        ),
        *RUN_SQL,
    ]
