"""Units: how a block is split into pieces run and retried as one, and how they are linked; no database."""

from __future__ import annotations

from builders import record
from byhand.operating.journal import MigrationProgress
from byhand.operating.preflight import BlockPlan
from byhand.operating.units import Unit, link_units, split_block
from byhand.runbook import Block, Control, Step

DDL = 'ALTER TABLE "shop_book" ADD COLUMN "x" integer NULL;'
INDEX = 'CREATE INDEX CONCURRENTLY "shop_book_x" ON "shop_book" ("x");'


def alone_if_ddl(sql: str) -> bool:
    """As MariaDB decides: everything but DML commits by itself."""
    return not sql.startswith("INSERT")


def shape(units: list[Unit]) -> list[tuple[str, list[int | None], bool]]:
    return [(u.kind, [i for i, _ in u.items], u.completes) for u in units]


def plan_of(block: Block, *, done: set[int] = frozenset(), passed: set[int] = frozenset()) -> BlockPlan:  # type: ignore[assignment]
    return BlockPlan(block, "run", "test", progress=MigrationProgress(done=set(done)), manual_passed=set(passed))


def atomic_block() -> Block:
    items = [Control("BEGIN;"), Step(kind="schema", sql=DDL, op=0), record("0002_x"), Control("COMMIT;")]
    return Block(kind="migration", atomic=True, migration="shop.0002_x", items=items)


def test_an_atomic_block_is_one_transaction_that_completes_it() -> None:
    """BEGIN ... COMMIT: one unit holding both statements; it writes the migration's journal row."""
    assert shape(split_block(plan_of(atomic_block()), runs_alone=lambda sql: False)) == [("transaction", [1, 2], True)]


def test_without_transactional_ddl_each_ddl_runs_alone_and_a_squash_records_in_one_transaction() -> None:
    """MariaDB: DDL alone; the squash's three rows in one transaction (all or none)."""
    items = [Step(kind="schema", sql=DDL, op=0), Step(kind="schema", sql=DDL, op=1)]
    items += [record("0001"), record("0002"), record("0001_squashed_0002")]
    block = Block(kind="migration", atomic=True, migration="shop.0001_squashed_0002", items=items)
    assert shape(split_block(plan_of(block), runs_alone=alone_if_ddl)) == [
        ("alone", [1], False),
        ("alone", [2], False),
        ("transaction", [3, 4, 5], True),
    ]


def test_statements_done_in_an_earlier_run_are_left_out() -> None:
    """Resuming a non-atomic block after its first statement committed."""
    items = [Step(kind="schema", sql=INDEX, op=0), Step(kind="schema", sql=DDL, op=1), record("0009")]
    block = Block(kind="migration", atomic=False, migration="shop.0009", items=items)
    units = split_block(plan_of(block, done={1}), runs_alone=lambda sql: "CONCURRENTLY" in sql)
    assert shape(units) == [("transaction", [2], False), ("transaction", [3], True)]


def test_an_unconfirmed_manual_step_ends_the_units_and_splits_its_transaction() -> None:
    """The statements before it commit; nothing after it runs; no unit completes the block."""
    items = [Control("BEGIN;"), Step(kind="schema", sql=DDL, op=0), Step(kind="manual", op=1, callable="m.f")]
    items += [Step(kind="schema", sql=DDL, op=2), record("0003"), Control("COMMIT;")]
    block = Block(kind="migration", atomic=True, migration="shop.0003", items=items)
    units = split_block(plan_of(block), runs_alone=lambda sql: False)
    assert shape(units) == [("transaction", [1], False), ("manual-stop", [None], False)]
    confirmed = split_block(plan_of(block, passed={1}), runs_alone=lambda sql: False)
    assert shape(confirmed) == [("transaction", [1, None, 2, 3], True)]


def test_a_block_whose_statements_are_all_done_gets_a_finish_unit() -> None:
    """It still needs its journal row saying the migration is done."""
    assert shape(split_block(plan_of(atomic_block(), done={1, 2}), runs_alone=lambda sql: False)) == [
        ("transaction", [], False),
        ("finish", [], True),
    ]


def test_linking_carries_started_rows_forwards_and_done_rows_into_the_next_transaction() -> None:
    """alone -> alone: prestart; alone -> transaction: defer_done; across blocks as well."""
    first = Block(
        kind="migration",
        atomic=True,
        migration="shop.0001",
        items=[Step(kind="schema", sql=DDL, op=0), Step(kind="schema", sql=DDL, op=1), record("0001")],
    )
    second = Block(kind="migration", atomic=True, migration="shop.0002", items=[Step(kind="schema", sql=DDL, op=0)])
    plans = [plan_of(first), plan_of(second)]
    blocks = [(plan, split_block(plan, runs_alone=alone_if_ddl)) for plan in plans]
    link_units(blocks)
    (one, two, rows), (three, _finish) = blocks[0][1], blocks[1][1]
    assert one.prestart is not None and one.prestart[:2] == (plans[0], 2) and not one.defer_done
    assert two.prestart is None and two.defer_done
    assert rows.prestart is not None and rows.prestart[:2] == (plans[1], 1)
    assert three.prestart is None and not three.defer_done
