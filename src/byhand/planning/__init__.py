"""The planning side: what runs where the Django project and its migrations are.

The flow of ``byhand sql``: ``plans`` (the migrations migrate would run, in its order)
-> ``states`` and ``operations`` (Django's states, the Python and irreversible operations
among them) -> ``scratch`` (a schema-only copy of the target) -> ``compiling`` (each
migration rehearsed on the copy through Django's own schema editor; ``recorder`` keeps
what it sends, ``statement_thread`` runs it in the background) -> a Runbook. Beside it:
``history`` (django_migrations rows as SQL), ``recording`` (record / unrecord),
``verifying``, ``schema``, ``attribution`` and ``replaying`` (verify: the live schema
against the recorded history; the pending migrations forwards and back on its copy),
``manual_steps`` (run-python) and ``signals`` (post-migrate).
"""
