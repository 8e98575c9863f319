from django.db import DatabaseError, migrations, transaction


class TryDropIndex(migrations.RunSQL):
    """Like django-celery-results' TryRemoveIndex: the index may not exist, and its
    failure is caught (in a savepoint, so that PostgreSQL's transaction survives)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        sql = "DROP INDEX catalog_never_made" + (" ON catalog_category" if connection.vendor == "mysql" else "")
        try:
            if connection.features.can_rollback_ddl:
                with transaction.atomic(using=connection.alias):
                    schema_editor.execute(sql)
            else:
                schema_editor.execute(sql)
        except DatabaseError:
            pass

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [TryDropIndex(sql="")]
