"""The operating side: what runs next to the production database, with the runbook, a
driver and no Django.

The flow: ``preflight`` (per block: run, skip or refuse, from django_migrations and the
journal) -> ``units`` (each block split into what runs and is retried as one piece) ->
``applying`` (the run: the run lock, the loop over blocks and units, the stop rule) ->
``executing`` (one unit on the database, journaled). Beside them: ``retrying`` (the pure
retry policy), ``run_lock``, ``monitor`` (a second connection: blockers, progress,
cancelling, and the watcher thread), ``journal`` (byhand_journal) and ``status``.
"""
