"""Per-vendor knowledge, one object per vendor, registered by name: nothing outside this
package asks which vendor it has. Importing it loads no driver and no Django."""

from __future__ import annotations

from collections.abc import Mapping

from byhand.exceptions import UnsupportedVendor
from byhand.vendors.base import ScratchDatabase, Vendor
from byhand.vendors.mysql import MySQL
from byhand.vendors.params import ConnectionParams
from byhand.vendors.postgresql import PostgreSQL
from byhand.vendors.sqlite import SQLite
from byhand.vendors.target import Target

__all__ = ["VENDORS", "ScratchDatabase", "Vendor", "get_target", "get_vendor"]

#: Every vendor byhand supports, by Django's ``connection.vendor`` name.
VENDORS: Mapping[str, Vendor] = {vendor.name: vendor for vendor in (PostgreSQL(), MySQL(), SQLite())}


def get_vendor(name: str) -> Vendor:
    """The vendor object for a Django ``connection.vendor`` name (or a runbook's header)."""
    try:
        return VENDORS[name]
    except KeyError:
        raise UnsupportedVendor(name) from None


def get_target(params: ConnectionParams) -> Target:
    """An unconnected operating-side connection for ``params``."""
    return get_vendor(params.vendor).target(params)
