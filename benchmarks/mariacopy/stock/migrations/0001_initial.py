from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(max_length=32)),
                ("qty", models.IntegerField()),
                ("amount", models.IntegerField()),
                ("note", models.CharField(max_length=64, null=True)),
                ("hits", models.IntegerField(default=0)),
            ],
        ),
    ]
