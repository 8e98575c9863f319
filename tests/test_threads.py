"""threads.py: a thread started under signals_blocked() never takes SIGINT, SIGTERM or
SIGHUP, from its first instruction on; its creator gets its own mask back."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
from django.db import connections

from byhand.threads import set_event, signals_blocked
from byhand.vendors import get_vendor
from byhand.vendors.clients import run_client
from support import VENDOR, fresh_database, use_database

STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def test_a_thread_started_inside_blocks_the_stopping_signals_and_the_creator_gets_its_mask_back() -> None:
    """The new thread's first look at its mask finds the three; the creator's mask is as before."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    seen: list[set[signal.Signals]] = []
    thread = threading.Thread(target=lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    with signals_blocked():
        assert STOPPING <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
        thread.start()
    thread.join()
    assert STOPPING <= seen[0]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


@pytest.mark.needs_server
def test_the_programs_a_scratch_copy_starts_block_no_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dump runs in a pool thread; a program started there inherits that thread's mask, so
    pg_dump or mysqldump would go on through Ctrl-C, SIGTERM and a closed terminal if the pool
    blocked them. The dump's own program is swapped for one that prints its mask; the copy then
    stops, and its scratch database is dropped."""
    if VENDOR == "sqlite":
        pytest.skip("SQLite's scratch copy starts no program")
    masks: list[str] = []
    read_mask = ["grep", "SigBlk", "/proc/self/status"]

    def dump_schema(vendor: Any, target: Any, *, unwanted: Any = None) -> str:
        masks.append(run_client(read_mask, env=None, what="read its signal mask"))
        raise RuntimeError("the mask is read: stop the copy here")

    connection = connections["default"]
    vendor = get_vendor(connection.vendor)
    monkeypatch.setattr(type(vendor), "dump_schema", dump_schema)
    with fresh_database() as settings, use_database("default", settings):
        with pytest.raises(RuntimeError, match="the mask is read"):
            vendor.make_scratch(connections["default"], server=connections["default"])
    assert masks == [run_client(read_mask, env=None, what="read its signal mask")]  # as from the main thread


def test_set_event_sets_it_with_the_mask_put_back() -> None:
    """set_event: the event set, the caller's mask as it was (SIGTERM taken meanwhile is raised after)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    event = threading.Event()
    set_event(event)
    assert event.is_set()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
