"""The retry policy: backoff with jitter, and when to give up; pure, no clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from byhand.operating.retrying import RetryPolicy


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.1, 0.2), (2, 0.2, 0.4), (3, 0.4, 0.8), (5, 1.6, 3.2), (6, 2.5, 5.0), (7, 2.5, 5.0), (30, 2.5, 5.0)],
)
def test_policy_waits_between_half_and_all_of_the_doubled_base(attempt: int, low: float, high: float) -> None:
    """200 ms doubled per attempt, capped at 5 s; jitter 0 gives half, jitter 1 all of it."""
    policy = RetryPolicy()
    assert policy.delay(attempt, rng=lambda: 0.0) == pytest.approx(low)
    assert policy.delay(attempt, rng=lambda: 1.0) == pytest.approx(high)
    assert low <= policy.delay(attempt, rng=lambda: 0.37) <= high


def test_policy_with_its_own_base_and_cap() -> None:
    """base 1 s, cap 3 s: 1, 2, then 3 s at most."""
    policy = RetryPolicy(base=timedelta(seconds=1), cap=timedelta(seconds=3))
    assert [policy.delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]


def test_policy_stays_at_the_cap_however_many_attempts() -> None:
    """--max-attempts 2000 --max-wait 3h is allowed: attempt 1100 still waits at most the cap."""
    assert RetryPolicy().delay(1100, rng=lambda: 1.0) == 5.0


def test_the_next_attempt_waits_the_delay_while_attempts_and_time_remain() -> None:
    """Attempt 3 of 20, 1 s waited of 10 min: the delay of attempt 3."""
    policy = RetryPolicy()
    assert policy.next_delay(3, 1.0, rng=lambda: 0.5) == policy.delay(3, rng=lambda: 0.5) == pytest.approx(0.6)


def test_it_gives_up_after_max_attempts() -> None:
    """The last attempt failed: no delay, whatever time is left."""
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_delay(2, 0.0, rng=lambda: 0.0) is not None
    assert policy.next_delay(3, 0.0, rng=lambda: 0.0) is None


def test_it_gives_up_when_the_wait_would_pass_max_wait() -> None:
    """9.8 s waited of 10 s: a 0.4 s delay would pass the limit, a 0.1 s one would not."""
    policy = RetryPolicy(max_wait=timedelta(seconds=10))
    assert policy.next_delay(2, 9.8, rng=lambda: 1.0) is None  # 0.4 s
    assert policy.next_delay(1, 9.8, rng=lambda: 0.0) == pytest.approx(0.1)


def test_statements_that_block_nobody_while_waiting_wait_up_to_max_wait() -> None:
    """CREATE INDEX CONCURRENTLY: not the short lock timeout but --max-wait (or its own), and the
    statement timeout too, the lock wait ending a little before it; other statements the short one."""
    from byhand.operating.retrying import Limits
    from byhand.vendors import get_vendor
    from byhand.vendors.params import ConnectionParams

    target = get_vendor("postgresql").target(ConnectionParams(vendor="postgresql", database="x"))
    cic = 'CREATE INDEX CONCURRENTLY "i" ON "t" ("c");'
    short, wait = timedelta(milliseconds=100), timedelta(minutes=10)
    limits = Limits(short, None, None, wait)
    assert limits.for_statement(target, 'ALTER TABLE "t" ADD COLUMN "c" int;') == (short, None)
    assert limits.for_statement(target, cic) == (wait, timedelta(0))
    assert Limits(short, None, timedelta(0), wait).for_statement(target, cic) == (timedelta(0), timedelta(0))
    statement = timedelta(seconds=3)
    assert Limits(short, statement, None, wait).for_statement(target, cic) == (statement * 0.9, statement)


def test_on_mariadb_what_reads_every_row_waits_at_least_a_second() -> None:
    """MariaDB counts lock_wait_timeout in whole seconds: 100 ms is NOWAIT, which throws a
    finished index build or table copy away at its last lock when a transaction read the
    table meanwhile. A statement the rehearsal saw read every row, or found INPLACE or COPY
    (a rebuild it could not see: no PROCESS privilege), gets 1 s, unless --max-wait is
    shorter; others, and MySQL (whose least is 1 s anyway), the lock timeout given."""
    from byhand.operating.retrying import Limits
    from byhand.vendors import get_vendor
    from byhand.vendors.params import ConnectionParams

    target = get_vendor("mysql").target(ConnectionParams(vendor="mysql", database="x"))
    short, wait = timedelta(milliseconds=100), timedelta(minutes=10)
    limits = Limits(short, None, None, wait)
    build = "CREATE INDEX `i` ON `t` (`c`);"
    scanned = {"tables": ["t"], "scan": True, "algorithm": "NOCOPY", "lock": "NONE"}
    instant = {"tables": ["t"], "scan": False, "algorithm": "INSTANT", "lock": "NONE"}
    target._mariadb = True  # type: ignore[attr-defined]  # what driver_connect finds out
    assert limits.for_statement(target, build, scanned) == (timedelta(seconds=1), None)
    assert limits.for_statement(target, build, instant) == (short, None)
    assert limits.for_statement(target, build) == (short, None)  # not observed: the text does not say
    unseen = {"tables": ["t"], "scan": False, "rewrites": [], "algorithm": "INPLACE", "lock": "NONE"}
    assert limits.for_statement(target, "ALTER TABLE `t` MODIFY `c` int NULL;", unseen)[0] == timedelta(seconds=1)
    assert Limits(short, None, None, timedelta(milliseconds=500)).for_statement(target, build, scanned)[0] == (
        timedelta(milliseconds=500)
    )
    longer = timedelta(seconds=5)
    assert Limits(longer, None, None, wait).for_statement(target, build, scanned)[0] == longer
    target._mariadb = False  # type: ignore[attr-defined]
    assert limits.for_statement(target, build, scanned) == (short, None)
