"""The catalogue's tables before any entry: author, book (-> author), loan (-> book),
each filled with a million rows by benchmarks/review_catalogue.py."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Author",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("born", models.IntegerField()),
                ("email", models.CharField(max_length=254, null=True)),
                ("code", models.CharField(max_length=40)),
            ],
        ),
        migrations.CreateModel(
            name="Book",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=200)),
                ("pages", models.IntegerField()),
                ("rating", models.IntegerField()),
                ("isbn", models.CharField(max_length=20, null=True)),
                ("price", models.DecimalField(decimal_places=2, max_digits=8)),
                ("author", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="catalogue.author")),
            ],
        ),
        migrations.CreateModel(
            name="Loan",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.IntegerField()),
                ("note", models.CharField(max_length=100)),
                ("book", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="catalogue.book")),
            ],
        ),
    ]
