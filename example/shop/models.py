from django.db import models


class Author(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100)


class Imprint(models.Model):
    name = models.CharField(max_length=100)


class Book(models.Model):
    title = models.CharField(max_length=200)
    code = models.CharField(max_length=20)
    author = models.ForeignKey(Author, models.CASCADE, null=True)
    publisher = models.ForeignKey(Imprint, models.SET_NULL, null=True)
    pages = models.IntegerField(null=True)
    promo = models.CharField(max_length=50, default="50% off")
