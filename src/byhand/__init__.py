"""byhand: Django migrations as one reviewed SQL runbook, applied safely by hand."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
