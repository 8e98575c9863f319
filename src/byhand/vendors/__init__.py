"""Per-vendor knowledge, picked by name: nothing outside this package checks the vendor."""

from __future__ import annotations

from byhand.exceptions import UnsupportedVendor
from byhand.vendors.base import ScratchDatabase, Vendor
from byhand.vendors.target import ConnectionParams, Target

__all__ = ["ScratchDatabase", "Vendor", "get_target", "get_vendor"]


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


def get_target(params: ConnectionParams) -> Target:
    """Return an unconnected operating-side adapter for ``params.vendor``."""
    if params.vendor == "postgresql":
        from byhand.vendors.postgresql import PostgreSQLTarget

        return PostgreSQLTarget(params)
    if params.vendor == "mysql":
        from byhand.vendors.mysql import MySQLTarget

        return MySQLTarget(params)
    if params.vendor == "sqlite":
        from byhand.vendors.sqlite import SQLiteTarget

        return SQLiteTarget(params)
    raise UnsupportedVendor(params.vendor)
