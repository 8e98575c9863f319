from django.db import models


class Review(models.Model):
    author = models.ForeignKey("shop.Author", models.CASCADE)
    text = models.TextField()
