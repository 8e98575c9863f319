"""An open-loop application load of several query streams, each at its own rate, on a pool of connections.

Query k of a stream is due at t0 + k/rate; whichever worker is free takes the query due
first among all streams, sleeps until it is due, and times it from then, so a worker's
lateness (every connection stuck behind a lock) is in the latency, as a real
application's queue would have it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from benchlib import Database

__all__ = ["Failure", "MixedLoad", "Sample", "Stream", "under_load"]

T = TypeVar("T")
LEAD, TAIL = 1.0, 1.0  # seconds of load before the migration starts, and after it has ended


@dataclass(frozen=True)
class Stream:
    """One kind of query: ``sql`` takes one parameter, a random key in 1..keys."""

    name: str
    sql: str
    rate: float  # queries per second


@dataclass(frozen=True)
class Sample:
    stream: str
    due: float  # seconds after t0
    latency: float  # seconds from due to done


@dataclass(frozen=True)
class Failure:
    stream: str
    due: float
    error: str


class MixedLoad:
    """The streams, open loop, on ``threads`` autocommit connections."""

    def __init__(self, database: Database, streams: list[Stream], *, threads: int, keys: int) -> None:
        self._database, self._streams, self._keys = database, streams, keys
        self._connections = [database.connect() for _ in range(threads)]
        self._lock = threading.Lock()
        self._taken = [0] * len(streams)
        self._t0 = 0.0
        self._stop_at = float("inf")
        self._threads: list[threading.Thread] = []
        self.samples: list[Sample] = []
        self.failures: list[Failure] = []

    def start(self, t0: float) -> None:
        self._t0 = t0
        for seed, connection in enumerate(self._connections):
            thread = threading.Thread(target=self._work, args=(connection, random.Random(seed)), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, at: float) -> None:
        """Take no query due at ``at`` or later; wait for the workers and close their connections."""
        self._stop_at = at
        for thread in self._threads:
            thread.join()
        for connection in self._connections:
            connection.close()

    def _take(self) -> tuple[Stream, float] | None:
        with self._lock:
            dues = [self._t0 + taken / stream.rate for taken, stream in zip(self._taken, self._streams, strict=True)]
            first = min(range(len(dues)), key=dues.__getitem__)
            if dues[first] >= self._stop_at:
                return None
            self._taken[first] += 1
            return self._streams[first], dues[first]

    def _work(self, connection: Any, rng: random.Random) -> None:
        while (taken := self._take()) is not None:
            stream, due = taken
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                cursor = connection.cursor()
                cursor.execute(stream.sql, (rng.randint(1, self._keys),))
                if cursor.description:
                    cursor.fetchall()
            except self._database.error as exc:
                self.failures.append(Failure(stream.name, due - self._t0, str(exc).strip()))
                if connection.closed:  # terminated: the application would reconnect
                    connection = self._database.connect()
                    self._connections.append(connection)
                continue
            self.samples.append(Sample(stream.name, due - self._t0, time.perf_counter() - due))


class Rates(Protocol):
    """What a benchmark's scenario says of its load: keys 1..rows, the rates, the connections."""

    @property
    def rows(self) -> int: ...
    @property
    def read_rate(self) -> float: ...
    @property
    def update_rate(self) -> float: ...
    @property
    def threads(self) -> int: ...


def under_load(
    database: Database, rates: Rates, *, read: str, update: str, run: Callable[[], T]
) -> tuple[T, MixedLoad]:
    """``run()`` in a window of load: the ``read`` and ``update`` streams start, ``run`` is
    called LEAD seconds later, and the load stops TAIL seconds after it returned; what
    ``run`` returned, and the stopped load (its samples and failures)."""
    streams = [Stream("read", read, rates.read_rate), Stream("update", update, rates.update_rate)]
    load = MixedLoad(database, streams, threads=rates.threads, keys=rates.rows)
    t0 = time.perf_counter() + 0.2
    load.start(t0)
    time.sleep(max(0.0, t0 + LEAD - time.perf_counter()))
    result = run()
    load.stop(time.perf_counter() + TAIL)
    return result, load
