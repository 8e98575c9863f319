from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Account",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=32)),
            ],
        ),
        migrations.CreateModel(
            name="Entry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "account",
                    models.ForeignKey(db_constraint=False, on_delete=models.DO_NOTHING, to="ledger.account"),
                ),
                ("code", models.CharField(max_length=32)),
                ("amount", models.IntegerField()),
                ("note", models.CharField(max_length=64, null=True)),
                ("hits", models.IntegerField(default=0)),
            ],
        ),
    ]
