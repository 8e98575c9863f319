"""Where to connect: a database URL, or a Django DATABASES entry, read into ConnectionParams.

No Django here: the console script runs next to the database with only a driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from byhand.exceptions import BadDatabaseUrl

__all__ = ["ConnectionParams", "params_from_settings", "parse_database_url"]

_SCHEMES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "pgsql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


@dataclass(frozen=True)
class ConnectionParams:
    """Where to connect. The password never appears in ``display()`` or ``repr()``."""

    vendor: str  # a registered vendor's name: "postgresql", "mysql", "sqlite"
    database: str  # a database name, or a file path for SQLite
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    def display(self) -> str:
        """The URL without its password, for messages, logs and the journal."""
        if self.vendor == "sqlite":
            return f"sqlite:///{self.database}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.vendor}://{user}{self.host or 'localhost'}{port}/{self.database}"

    def scrub(self, text: str) -> str:
        """``text`` with the password removed, for errors that might quote it."""
        return text.replace(self.password, "********") if self.password else text

    def error_text(self, exc: BaseException) -> str:
        """A driver's error on one line, the password scrubbed."""
        return self.scrub(" ".join(str(exc).split()))


def parse_database_url(url: str) -> ConnectionParams:
    """``postgres://user:pass@host:port/db``, ``mysql://...``, ``sqlite:///relative`` or ``sqlite:////abs``."""
    parts = urlsplit(url)
    if "@" in parts.path or "@" in parts.query or parts.fragment:
        raise BadDatabaseUrl(
            "its user, password or database name cannot be read unambiguously (the URL is not shown: it may hold a "
            "password): percent-encode the characters / @ : ? # % in them: / as %2F, @ as %40, : as %3A, ? as %3F, "
            "# as %23, % as %25 (or set the password in the URL's query, ?password=, encoded the same way)"
        )
    vendor = _SCHEMES.get(parts.scheme.lower())
    if vendor is None:
        known = ", ".join(f"{scheme}://" for scheme in _SCHEMES)
        raise BadDatabaseUrl(f"unknown scheme {parts.scheme + '://' if parts.scheme else '(none)'}; use one of {known}")
    if vendor == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path or parts.netloc:
            raise BadDatabaseUrl("an SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
        return ConnectionParams(vendor=vendor, database=path)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise BadDatabaseUrl(f"no database name in {parts.scheme}://…; add it as the path: /dbname")
    try:
        port = parts.port
    except ValueError:
        raise BadDatabaseUrl("the port is not a number from 1 to 65535") from None
    options = dict(parse_qsl(parts.query))
    password = unquote(parts.password) if parts.password is not None else options.pop("password", None)
    return ConnectionParams(
        vendor=vendor,
        database=database,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=password,
        options=options,
    )


def params_from_settings(settings: dict[str, Any], *, vendor: str, passed_options: frozenset[str]) -> ConnectionParams:
    """The same connection as a Django DATABASES entry (for ``manage.py byhand apply``), with
    only the OPTIONS that change where or how the driver connects (``passed_options``)."""
    options = {k: str(v) for k, v in (settings.get("OPTIONS") or {}).items() if isinstance(v, (str, int))}
    return ConnectionParams(
        vendor=vendor,
        database=str(settings["NAME"]),
        host=settings.get("HOST") or None,
        port=int(settings["PORT"]) if settings.get("PORT") else None,
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        options={k: v for k, v in options.items() if k in passed_options},
    )
