from django.db import migrations


def create_default_domain(apps, schema_editor):
    apps.get_model("catalog", "Domain").objects.using(schema_editor.connection.alias).create(name="default")


def delete_default_domain(apps, schema_editor):
    apps.get_model("catalog", "Domain").objects.using(schema_editor.connection.alias).filter(name="default").delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(create_default_domain, delete_default_domain)]
