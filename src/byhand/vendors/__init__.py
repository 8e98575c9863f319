"""Per-vendor knowledge, picked by name: nothing outside this package checks the vendor."""

from __future__ import annotations

from byhand.exceptions import UnsupportedVendor
from byhand.vendors.base import ScratchDatabase, Vendor

__all__ = ["ScratchDatabase", "Vendor", "get_vendor"]


def get_vendor(name: str) -> Vendor:
    """Return the vendor adapter for a Django ``connection.vendor`` name."""
    if name == "postgresql":
        from byhand.vendors.postgresql import PostgreSQL

        return PostgreSQL()
    if name == "mysql":
        from byhand.vendors.mysql import MySQL

        return MySQL()
    if name == "sqlite":
        from byhand.vendors.sqlite import SQLite

        return SQLite()
    raise UnsupportedVendor(name)
