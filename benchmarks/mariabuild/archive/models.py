"""The one table of the MariaDB index-build benchmark, as migration 0002 leaves it."""

from __future__ import annotations

from django.db import models


class Document(models.Model):
    title = models.CharField(max_length=200)  # wide random text: the index's first column
    slug = models.CharField(max_length=200)  # and its second
    hits = models.IntegerField(default=0)  # what the load's updates change; not in the index

    class Meta:
        indexes = (models.Index(fields=["title", "slug"], name="archive_doc_title_slug_idx"),)
