"""console.py's terminate_as_interrupt: SIGTERM, SIGHUP and Ctrl-C raise KeyboardInterrupt and are
remembered, so that a command still says "interrupted" when a driver or Django swallowed the
KeyboardInterrupt and raised something else in its place."""

from __future__ import annotations

import os
import signal

import pytest

from byhand.console import terminate_as_interrupt


@pytest.mark.parametrize(
    ("signum", "name"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")]
)
def test_each_stopping_signal_is_raised_and_remembered(signum: int, name: str) -> None:
    """#22.2: on Django 6.0 / PostgreSQL, a Ctrl-C that landed while Django made the scratch copy's
    django_migrations table became "Unable to create the django_migrations table (can't change
    'autocommit' now ...)": the KeyboardInterrupt was lost, and verify did not say "interrupted".
    Ctrl-C was the one signal not remembered. Python's own handlers are back afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        received: list[str] = []
        with pytest.raises(KeyboardInterrupt), terminate_as_interrupt(received):
            os.kill(os.getpid(), signum)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a bytecode boundary: the handler runs
        assert received == [name]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    """A background job (`byhand ... &` in a script) starts with SIGINT ignored: it stays so."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        received: list[str] = []
        with terminate_as_interrupt(received):
            os.kill(os.getpid(), signal.SIGINT)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert received == []
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
