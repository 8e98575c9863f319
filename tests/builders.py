"""Runbooks built in memory, as the renderer lays them out: no database, no Django."""

from __future__ import annotations

from typing import Any

from byhand.runbook import Block, BlockKind, Comment, Control, Runbook, Step

__all__ = [
    "BACKFILL",
    "INDEX",
    "MIGRATIONS_DDL",
    "SQLITE_NOW",
    "postgresql_runbook",
    "record",
    "sqlite_block",
    "sqlite_runbook",
]

#: django_migrations.applied as the SQLite renderer writes it.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
INDEX = 'CREATE INDEX CONCURRENTLY "shop_book_title_idx" ON "shop_book" ("title");'
WARM_CACHE = "shop.migrations.0003_title_idx.warm_cache"
BACKFILL = 'UPDATE "shop_book"\n   SET "isbn" = \'\';'
MIGRATIONS_DDL = (
    'CREATE TABLE "django_migrations" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL);'
)


def record(name: str, *, app: str = "shop", now: str = "NOW()") -> Step:
    """The django_migrations INSERT of ``app.name``."""
    return Step(
        kind="record",
        sql=f'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (\'{app}\', \'{name}\', {now});',
    )


def postgresql_runbook() -> Runbook:
    """Two PostgreSQL migrations as 'manage.py byhand sql' writes them: one atomic (a DDL
    statement, a two-line UPDATE), one not (a concurrent index build and a manual step)."""
    isbn = Block(
        kind="migration",
        atomic=True,
        migration="shop.0002_book_isbn",
        requires=["shop.0001_initial"],
        records=[["shop", "0002_book_isbn"]],
        items=[
            Control("BEGIN;"),
            Comment("--"),
            Comment("-- Add field isbn to book"),
            Comment("--"),
            Step(kind="schema", sql='ALTER TABLE "shop_book" ADD COLUMN "isbn" varchar(13) NULL;', op=0),
            Step(kind="schema", sql=BACKFILL, op=1),
            Comment("--"),
            Comment("-- Record applied in django_migrations"),
            Comment("--"),
            record("0002_book_isbn"),
            Control("COMMIT;"),
        ],
    )
    index = Block(
        kind="migration",
        atomic=False,
        migration="shop.0003_title_idx",
        requires=["shop.0002_book_isbn"],
        records=[["shop", "0003_title_idx"]],
        items=[
            Comment("--"),
            Comment("-- Create index shop_book_title_idx on field(s) title of model book"),
            Comment("--"),
            Step(kind="schema", sql=INDEX, op=0),
            Comment("--"),
            Comment("-- Warm the cache"),
            Comment("--"),
            Comment(f"-- MANUAL STEP: run {WARM_CACHE} (forwards) on a host with the project's code."),
            Step(kind="manual", op=1, callable=WARM_CACHE),
            record("0003_title_idx"),
        ],
    )
    return Runbook(
        header={
            "direction": "forwards",
            "vendor": "postgresql",
            "server_version": "16.4",
            "database": "default",
            "target": None,
            "django": "5.2.8",
            "byhand": "0.1.0",
            "generated_at": "2026-11-25T20:58:00Z",
            "against": "sha256:5d41402abc4b2a76b9719d911017c592",
            "settings": {"DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField", "USE_TZ": True, "TIME_ZONE": "UTC"},
        },
        preamble=[Comment("-- Plan (2 migrations, forwards):")],
        blocks=[isbn, index],
    )


def sqlite_block(kind: BlockKind, *steps: Step, **fields: Any) -> Block:
    """A block as the SQLite renderer writes it: foreign keys off, one transaction, checked, back on."""
    items = [
        Control("PRAGMA foreign_keys = OFF;"),
        Control("BEGIN;"),
        *steps,
        Control("PRAGMA foreign_key_check;"),
        Control("COMMIT;"),
        Control("PRAGMA foreign_keys = ON;"),
    ]
    return Block(kind=kind, atomic=True, items=list(items), **fields)


def sqlite_runbook(*, requires: list[str] | None = None) -> Runbook:
    """One SQLite migration creating shop_book, as the renderer lays it out."""
    create = Step(
        kind="schema",
        sql='CREATE TABLE "shop_book" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "title" varchar(200) '
        "NOT NULL);",
        op=0,
    )
    block = sqlite_block(
        "migration",
        create,
        record("0001_initial", now=SQLITE_NOW),
        migration="shop.0001_initial",
        requires=requires or [],
        records=[["shop", "0001_initial"]],
    )
    block.items[2:2] = [Comment("--"), Comment("-- Create model Book"), Comment("--")]
    return Runbook(header={"direction": "forwards", "vendor": "sqlite"}, blocks=[block])
