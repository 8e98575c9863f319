"""The MySQL/MariaDB drivers the operating side can use, made to behave alike where byhand
relies on them: mysqlclient (``MySQLdb``, compiled against the client library) and PyMySQL
(pure Python: nothing to compile on the production host).

Which one: the URL's ``?driver=mysqlclient|pymysql``, else ``BYHAND_MYSQL_DRIVER``, else
mysqlclient when it can be imported, else PyMySQL. What differs between them, and what
is done about it (each checked against MariaDB by tests/test_mysql_drivers.py):

- several statements in one execute (a ``RunSQL`` list item holding two): mysqlclient
  sends them all (CLIENT.MULTI_STATEMENTS is on by default), PyMySQL refuses them with a
  syntax error unless asked: byhand asks, so both run what Django ran;
- ``connect_timeout``: mysqlclient's covers the server's greeting too, PyMySQL's only the
  TCP connect (a server that accepts and never greets would hang it): the greeting and
  the login get a read timeout of the same length, lifted once connected;
- the server's version: PyMySQL shows what MariaDB tells old clients, ``5.5.5-10.11.…``;
  the prefix is dropped;
- a connection the driver already knows is closed: mysqlclient says 2006, PyMySQL
  ``InterfaceError(0, '')``: both are a lost connection.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from byhand.exceptions import BadDatabaseUrl, DriverUnavailable
from byhand.vendors.params import ConnectionParams

__all__ = ["DRIVER_VARIABLE", "MySQLDriver", "choose_driver"]

#: The environment variable that chooses the driver when the URL does not.
DRIVER_VARIABLE = "BYHAND_MYSQL_DRIVER"
_CHOICES = ("mysqlclient", "pymysql")
_INSTALL = (
    "install one of them: mysqlclient (compiled: needs a C compiler, pkg-config and the MariaDB or MySQL "
    "client headers; pip install 'byhand[mysql]') or PyMySQL (pure Python; pip install 'byhand[pymysql]')"
)
#: What MariaDB prefixes to its version for clients that predate version 10.
_OLD_CLIENT_PREFIX = re.compile(r"^5\.5\.5-(?=\d+\.\d+.*mariadb)", re.IGNORECASE)


@dataclass(frozen=True)
class MySQLDriver:
    """One driver module and how byhand uses it."""

    name: str  # "mysqlclient" or "pymysql", as chosen
    module: ModuleType

    def describe(self) -> str:
        """For messages and the journal: "mysqlclient 2.2.4", "PyMySQL 1.1.1"."""
        if self.name == "mysqlclient":
            return "mysqlclient " + ".".join(str(part) for part in self.module.version_info[:3])
        return "PyMySQL " + ".".join(str(part) for part in self.module.VERSION[:3])

    def connect(self, kwargs: dict[str, Any], *, application: str) -> Any:
        if self.name == "mysqlclient":
            return self.module.connect(**kwargs)
        timeout = kwargs["connect_timeout"]
        connection = self.module.connect(
            **kwargs,
            client_flag=self.module.constants.CLIENT.MULTI_STATEMENTS,
            read_timeout=timeout,
            write_timeout=timeout,
            program_name=application,
        )
        # Only the greeting and the login are timed: a statement may run for hours.
        connection._read_timeout = connection._write_timeout = None
        return connection

    def errors(self) -> tuple[type[BaseException], ...]:
        return (self.module.Error,)

    def is_closed(self, exc: BaseException) -> bool:
        """The driver refused because it had closed the connection already (after a loss)."""
        return isinstance(exc, self.module.InterfaceError) and bool(exc.args) and exc.args[0] == 0

    def server_version(self, connection: Any) -> str:
        return _OLD_CLIENT_PREFIX.sub("", str(connection.get_server_info()))


def choose_driver(params: ConnectionParams) -> MySQLDriver:
    """The driver the URL (``?driver=``) or BYHAND_MYSQL_DRIVER names, else the first of
    mysqlclient and PyMySQL that can be imported; DriverUnavailable when none can."""
    if "driver" in params.options:
        wanted = params.options["driver"].lower()
        if wanted not in _CHOICES:
            raise BadDatabaseUrl(
                f"driver={params.options['driver']} is not a MySQL driver byhand uses: use "
                "driver=mysqlclient or driver=pymysql, or leave it out"
            )
    else:
        wanted = os.environ.get(DRIVER_VARIABLE, "").lower() or "auto"
        if wanted not in (*_CHOICES, "auto"):
            raise DriverUnavailable(
                params.display(),
                f"{DRIVER_VARIABLE}={os.environ[DRIVER_VARIABLE]} is not a MySQL driver byhand uses: set it to "
                "mysqlclient or pymysql, or unset it to take whichever is installed",
            )
    problems = []
    for name in _CHOICES if wanted == "auto" else (wanted,):
        try:
            return _load(name)
        except ImportError as exc:
            problems.append(f"{name}: {exc}")
    chosen = (
        ""
        if wanted == "auto"
        else f" (the {'URL' if 'driver' in params.options else DRIVER_VARIABLE} asks for {wanted})"
    )
    raise DriverUnavailable(
        params.display(), f"no MySQL driver could be imported{chosen} ({'; '.join(problems)}); {_INSTALL}"
    )


def _load(name: str) -> MySQLDriver:
    if name == "pymysql":
        return MySQLDriver("pymysql", importlib.import_module("pymysql"))
    module = importlib.import_module("MySQLdb")
    if module.__name__ == "pymysql":  # pymysql.install_as_MySQLdb() was called in this process
        raise ImportError("MySQLdb is PyMySQL here (pymysql.install_as_MySQLdb()), not mysqlclient")
    return MySQLDriver("mysqlclient", module)
