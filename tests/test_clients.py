"""vendors/clients.py: run_client, which runs the vendors' CLIs for the scratch copy."""

from __future__ import annotations

import threading
import time

from byhand.exceptions import CopyUnwanted, RehearsalError
from byhand.vendors.clients import UNWANTED_POLL, run_client


def in_thread(call: object, seconds: float = 30) -> list[object]:
    """Run ``call`` in a thread and wait at most ``seconds``: what it returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"run_client did not return within {seconds} s"
    return outcome


def test_a_slow_reader_gets_all_its_input_while_the_copy_is_wanted() -> None:
    """psql loading a big dump reads its input for longer than one look at ``unwanted``:
    all of it must still reach it (a retried communicate() with a timeout stops writing,
    and the load waited forever)."""
    schema = "x" * 2_000_000
    pause = 6 * UNWANTED_POLL
    args = ["sh", "-c", f"sleep {pause}; wc -c"]
    call = lambda: run_client(args, env=None, stdin=schema, what="load", unwanted=threading.Event())  # noqa: E731
    assert [int(str(out)) for out in in_thread(call)] == [len(schema)]


def test_an_unwanted_copy_kills_its_program() -> None:
    unwanted = threading.Event()
    threading.Timer(0.2, unwanted.set).start()
    started = time.monotonic()
    call = lambda: run_client(["sleep", "30"], env=None, what="dump", unwanted=unwanted)  # noqa: E731
    [outcome] = in_thread(call)
    assert isinstance(outcome, CopyUnwanted)
    assert time.monotonic() - started < 5


def test_a_failing_program_says_what_it_said() -> None:
    [outcome] = in_thread(lambda: run_client(["sh", "-c", "echo no way >&2; exit 3"], env=None, what="dump"))
    assert isinstance(outcome, RehearsalError)
    assert str(outcome) == "could not dump: sh said: no way"
