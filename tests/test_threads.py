"""threads.py: a thread started under signals_blocked() never takes SIGINT, SIGTERM or
SIGHUP, from its first instruction on; its creator gets its own mask back."""

from __future__ import annotations

import signal
import threading

from byhand.threads import signals_blocked

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
