"""Empty PostgreSQL databases made ahead and dropped behind, while the tests run.

CREATE DATABASE and DROP DATABASE each take about 0.4 s on this machine (WAL and
fsync, not CPU), and the suite makes some 250 databases per PostgreSQL lane. This
process does that work beside the tests: tests/support.py starts it (a process, not a
thread: the kill tests fork) and talks to it over stdin/stdout, one line per request:

    take         -> the name of an empty database, made for this request or earlier
    drop NAME    -> (no answer) dropped when nothing else is asked
    (end of input)  drop what is made or still to drop, and exit

Usage: python database_pool.py CONNINFO   (psycopg's connection string of the server)
"""

from __future__ import annotations

import os
import secrets
import select
import sys

import psycopg

#: Empty databases kept ready.
AHEAD = 2


def main(conninfo: str) -> None:
    admin = psycopg.connect(conninfo, autocommit=True)
    ready: list[str] = []
    to_drop: list[str] = []

    def make() -> str:
        name = f"byhand_test_{secrets.token_hex(4)}"
        admin.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(name: str) -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    pending = b""
    try:
        while True:
            # Wait for a request only when there is nothing to do beside it.
            idle = not to_drop and len(ready) >= AHEAD
            if select.select([0], [], [], None if idle else 0)[0]:
                chunk = os.read(0, 4096)
                if not chunk:
                    return
                pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                command, _, name = line.decode().partition(" ")
                if command == "take":
                    os.write(1, ((ready.pop(0) if ready else make()) + "\n").encode())
                elif command == "drop":
                    to_drop.append(name)
            # Nothing asked: what a test will want next first, then the drops.
            if len(ready) < AHEAD:
                ready.append(make())
            elif to_drop:
                drop(to_drop.pop(0))
    finally:
        for name in ready + to_drop:
            drop(name)
        admin.close()


if __name__ == "__main__":
    main(sys.argv[1])
