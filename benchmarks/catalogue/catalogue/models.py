"""The catalogue's models live in its migrations only: each migration is one entry of the
proof catalogue (benchmarks/review_catalogue.py), and no ``makemigrations`` is ever run here."""
