from django.db import migrations


def add_first_author(apps, schema_editor):
    Author = apps.get_model("shop", "Author")
    Author.objects.using(schema_editor.connection.alias).create(name="Ada")


def remove_first_author(apps, schema_editor):
    Author = apps.get_model("shop", "Author")
    Author.objects.using(schema_editor.connection.alias).filter(name="Ada").delete()


def fill_pages(apps, schema_editor):
    Book = apps.get_model("shop", "Book")
    Book.objects.using(schema_editor.connection.alias).filter(pages__isnull=True).update(pages=0)


class Migration(migrations.Migration):
    dependencies = [("shop", "0006_indexes_constraints")]
    operations = [
        # A list item is executed as written: Django's ';' would land in the comment.
        migrations.RunSQL(
            ["UPDATE shop_book SET promo = 'none' WHERE promo IS NULL -- backfill, never NULL again"],
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "UPDATE shop_book SET promo = '100% sure' WHERE pages = -1",
            reverse_sql="UPDATE shop_book SET promo = '50% off' WHERE pages = -1",
        ),
        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),
        migrations.RunPython(add_first_author, remove_first_author),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(fill_pages, migrations.RunPython.noop)]
        ),
    ]
