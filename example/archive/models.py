from django.db import models


class Entry(models.Model):
    book_ref = models.IntegerField()
    note = models.CharField(max_length=200, default="")
