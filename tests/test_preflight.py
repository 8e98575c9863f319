"""Preflight: each block's verdict from django_migrations rows and the journal; no database."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from byhand.exceptions import PreflightRefused
from byhand.operating.journal import MigrationProgress
from byhand.operating.preflight import BlockPlan, check_runbook, manual_step_id, numbered_steps
from byhand.runbook import Block, Comment, Control, Runbook, Step

Row = tuple[str, str]


def row(dotted: str) -> list[str]:
    app, _, name = dotted.partition(".")
    return [app, name]


def insert(dotted: str) -> Step:
    app, name = row(dotted)
    return Step(
        kind="record",
        sql=f'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (\'{app}\', \'{name}\', NOW());',
    )


def forwards(
    name: str, *, requires: Iterable[str] = (), records: Iterable[str] = (), manual: Iterable[int] = ()
) -> Block:
    """A forwards migration block: one schema statement, its manual steps, its record rows."""
    rows = list(records) or [name]
    items: list[Comment | Control | Step] = [
        Control("BEGIN;"),
        Comment("--"),
        Comment(f"-- {name}"),
        Comment("--"),
        Step(kind="schema", sql='ALTER TABLE "shop_book" ADD COLUMN "x" integer NULL;', op=0),
        *(Step(kind="manual", op=op, callable=f"shop.migrations.{row(name)[1]}.step_{op}") for op in manual),
        *(insert(r) for r in rows),
        Control("COMMIT;"),
    ]
    return Block(
        kind="migration",
        atomic=True,
        migration=name,
        requires=list(requires),
        records=[row(r) for r in rows],
        items=items,
    )


def backwards(name: str, *, required_by: Iterable[str] = ()) -> Block:
    """A backwards migration block: one reverse statement and the DELETE of its row."""
    app, bare = row(name)
    return Block(
        kind="migration",
        atomic=True,
        migration=name,
        deletes=[[app, bare]],
        required_by=list(required_by),
        items=[
            Control("BEGIN;"),
            Step(kind="schema", sql='ALTER TABLE "shop_book" DROP COLUMN "x" CASCADE;', op=0),
            Step(
                kind="record",
                sql=f'DELETE FROM "django_migrations" WHERE "app" = \'{app}\' AND "name" IN (\'{bare}\');',
            ),
            Control("COMMIT;"),
        ],
    )


def setup() -> Block:
    return Block(
        kind="setup",
        atomic=True,
        items=[
            Control("BEGIN;"),
            Step(kind="setup", sql='CREATE TABLE "django_migrations" ("id" bigint NOT NULL PRIMARY KEY);'),
            Control("COMMIT;"),
        ],
    )


def replacements(*squashes: str) -> Block:
    return Block(
        kind="replacements",
        atomic=True,
        records=[row(s) for s in squashes],
        items=[Control("BEGIN;"), *(insert(s) for s in squashes), Control("COMMIT;")],
    )


def runbook(*blocks: Block, direction: str = "forwards") -> Runbook:
    return Runbook(header={"direction": direction, "vendor": "postgresql"}, blocks=list(blocks))


def rows(*dotted: str) -> set[Row]:
    return {(row(d)[0], row(d)[1]) for d in dotted}


def check(
    book: Runbook,
    *,
    applied: set[Row],
    has_migrations_table: bool = True,
    progress: dict[str, MigrationProgress] | None = None,
    manual_done: Iterable[str] = (),
    skip_manual: bool = False,
) -> list[BlockPlan]:
    return check_runbook(
        book,
        applied=applied,
        has_migrations_table=has_migrations_table,
        progress=progress or {},
        manual_done=frozenset(manual_done),
        skip_manual=skip_manual,
    )


def verdicts(plans: list[BlockPlan]) -> list[tuple[str, str, str]]:
    return [(plan.name, plan.action, plan.reason) for plan in plans]


def refusal(book: Runbook, **kwargs: object) -> str:
    with pytest.raises(PreflightRefused) as caught:
        check(book, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# -- forwards ---------------------------------------------------------------------


def test_recorded_migrations_are_skipped_and_the_rest_run() -> None:
    """A recorded migration is skipped; one not recorded runs."""
    book = runbook(
        forwards("shop.0001_initial"),
        forwards("shop.0002_book_isbn", requires=["shop.0001_initial"]),
    )
    plans = check(book, applied=rows("shop.0001_initial"))
    assert verdicts(plans) == [
        ("shop.0001_initial", "skip", "already recorded in django_migrations"),
        ("shop.0002_book_isbn", "run", "not recorded: will be applied"),
    ]
    assert [plan.block for plan in plans] == book.blocks


def test_everything_recorded_means_nothing_runs() -> None:
    """A second run of the same runbook skips every block."""
    book = runbook(forwards("shop.0001_initial"), forwards("shop.0002_book_isbn", requires=["shop.0001_initial"]))
    plans = check(book, applied=rows("shop.0001_initial", "shop.0002_book_isbn"))
    assert [plan.action for plan in plans] == ["skip", "skip"]


def test_a_partly_recorded_squash_is_refused() -> None:
    """Some of a squash's rows recorded: the database changed since the runbook was written."""
    squash = forwards(
        "shop.0001_squashed_0003_review",
        records=["shop.0001_initial", "shop.0002_book_isbn", "shop.0003_review", "shop.0001_squashed_0003_review"],
    )
    message = refusal(runbook(squash), applied=rows("shop.0001_initial", "shop.0002_book_isbn"))
    assert message == (
        "preflight refused the runbook (nothing was changed):\n"
        "  shop.0001_squashed_0003_review: only some of its rows are recorded (shop.0001_initial recorded, "
        "shop.0002_book_isbn recorded, shop.0003_review not recorded, shop.0001_squashed_0003_review not recorded); "
        "the database changed since the runbook was written: generate it again"
    )


def test_a_fully_recorded_squash_is_skipped() -> None:
    """Every row of the squash recorded: skipped like any applied migration."""
    squash = forwards("shop.0001_squashed_0002_book_isbn", records=["shop.0001_initial", "shop.0002_book_isbn"])
    plans = check(runbook(squash), applied=rows("shop.0001_initial", "shop.0002_book_isbn"))
    assert verdicts(plans) == [("shop.0001_squashed_0002_book_isbn", "skip", "already recorded in django_migrations")]


def test_a_missing_dependency_is_refused_naming_it() -> None:
    """Every requirement that is neither recorded nor applied earlier is named."""
    book = runbook(
        forwards(
            "shop.0003_review",
            requires=["auth.0012_alter_user_first_name_max_length", "shop.0001_initial", "shop.0002_book_isbn"],
        )
    )
    message = refusal(book, applied=rows("shop.0001_initial"))
    assert message == (
        "preflight refused the runbook (nothing was changed):\n"
        "  shop.0003_review: needs auth.0012_alter_user_first_name_max_length, shop.0002_book_isbn, which is "
        "neither recorded in django_migrations nor applied earlier in this runbook"
    )


def test_a_dependency_applied_earlier_in_the_runbook_is_enough() -> None:
    """shop.0002 needs shop.0001, which the block before it applies."""
    book = runbook(
        forwards("shop.0001_initial"),
        forwards("shop.0002_book_isbn", requires=["shop.0001_initial"]),
    )
    plans = check(book, applied=set())
    assert [plan.action for plan in plans] == ["run", "run"]


def test_a_dependency_applied_later_in_the_runbook_is_refused() -> None:
    """Order matters: a requirement that only a later block applies is missing."""
    book = runbook(
        forwards("shop.0002_book_isbn", requires=["shop.0001_initial"]),
        forwards("shop.0001_initial"),
    )
    assert refusal(book, applied=set()) == (
        "preflight refused the runbook (nothing was changed):\n"
        "  shop.0002_book_isbn: needs shop.0001_initial, which is neither recorded in django_migrations nor "
        "applied earlier in this runbook"
    )


def test_a_squash_recorded_by_the_replacements_block_satisfies_a_dependency() -> None:
    """The bookkeeping block records the squash; the migration after it may require it."""
    book = runbook(
        replacements("shop.0001_squashed_0002_book_isbn"),
        forwards("shop.0003_review", requires=["shop.0001_squashed_0002_book_isbn"]),
    )
    plans = check(book, applied=rows("shop.0001_initial", "shop.0002_book_isbn"))
    assert verdicts(plans) == [
        ("(replacements)", "run", "records squashed migrations"),
        ("shop.0003_review", "run", "not recorded: will be applied"),
    ]


# -- setup and squash bookkeeping -------------------------------------------------


def test_setup_block_is_skipped_when_django_migrations_exists() -> None:
    """django_migrations is there: the block that creates it is skipped."""
    plans = check(runbook(setup(), forwards("shop.0001_initial")), applied=set(), has_migrations_table=True)
    assert verdicts(plans)[0] == ("(setup)", "skip", "django_migrations exists already")


def test_setup_block_runs_on_an_empty_database() -> None:
    """No django_migrations table: the setup block runs first."""
    plans = check(runbook(setup(), forwards("shop.0001_initial")), applied=set(), has_migrations_table=False)
    assert verdicts(plans) == [
        ("(setup)", "run", "django_migrations does not exist yet"),
        ("shop.0001_initial", "run", "not recorded: will be applied"),
    ]


def test_replacements_block_leaves_out_rows_already_recorded() -> None:
    """Of two squashes, the one recorded meanwhile is left out by its step number."""
    block = replacements("shop.0001_squashed_0002_book_isbn", "blog.0001_squashed_0004_tags")
    plans = check(runbook(block), applied=rows("blog.0001_squashed_0004_tags"))
    assert verdicts(plans) == [("(replacements)", "run", "records squashed migrations")]
    assert plans[0].skip_steps == {2}
    assert numbered_steps(block)[1][1].sql.endswith("('blog', '0001_squashed_0004_tags', NOW());")


def test_replacements_block_is_skipped_when_every_squash_is_recorded() -> None:
    """Both squashes recorded: nothing to do."""
    block = replacements("shop.0001_squashed_0002_book_isbn", "blog.0001_squashed_0004_tags")
    plans = check(runbook(block), applied=rows("shop.0001_squashed_0002_book_isbn", "blog.0001_squashed_0004_tags"))
    assert verdicts(plans) == [("(replacements)", "skip", "every squash is recorded already")]
    assert plans[0].skip_steps == set()


# -- backwards --------------------------------------------------------------------


def test_backwards_skips_what_is_not_recorded() -> None:
    """Unapplying: a migration not recorded is skipped, a recorded one runs."""
    book = runbook(
        backwards("shop.0003_review"),
        backwards("shop.0002_book_isbn", required_by=["shop.0003_review"]),
        direction="backwards",
    )
    plans = check(book, applied=rows("shop.0001_initial", "shop.0002_book_isbn"))
    assert verdicts(plans) == [
        ("shop.0003_review", "skip", "not recorded: nothing to unapply"),
        ("shop.0002_book_isbn", "run", "recorded: will be unapplied"),
    ]


def test_backwards_ignores_requirements() -> None:
    """Unapplying never checks what the migration needed to be applied."""
    block = backwards("shop.0002_book_isbn")
    block.requires = ["shop.0001_initial"]
    plans = check(runbook(block, direction="backwards"), applied=rows("shop.0002_book_isbn"))
    assert [plan.action for plan in plans] == ["run"]


def test_backwards_refuses_while_a_dependent_is_still_recorded() -> None:
    """shop.0003 depends on shop.0002 and stays recorded: unapplying shop.0002 is refused."""
    book = runbook(
        backwards("shop.0002_book_isbn", required_by=["blog.0002_book_link", "shop.0003_review"]),
        direction="backwards",
    )
    message = refusal(book, applied=rows("shop.0001_initial", "shop.0002_book_isbn", "shop.0003_review"))
    assert message == (
        "preflight refused the runbook (nothing was changed):\n"
        "  shop.0002_book_isbn: shop.0003_review depend(s) on it and are still recorded; unapply them first "
        "(a runbook down to an earlier target does)"
    )


def test_backwards_accepts_a_dependent_unapplied_earlier_in_the_runbook() -> None:
    """shop.0003 is unapplied by the block before: shop.0002 may go."""
    book = runbook(
        backwards("shop.0003_review"),
        backwards("shop.0002_book_isbn", required_by=["shop.0003_review"]),
        direction="backwards",
    )
    plans = check(book, applied=rows("shop.0001_initial", "shop.0002_book_isbn", "shop.0003_review"))
    assert [plan.action for plan in plans] == ["run", "run"]


def test_backwards_does_not_check_dependents_of_a_skipped_block() -> None:
    """A migration that is not recorded is skipped whatever depends on it."""
    book = runbook(backwards("shop.0002_book_isbn", required_by=["shop.0003_review"]), direction="backwards")
    plans = check(book, applied=rows("shop.0003_review"))
    assert verdicts(plans) == [("shop.0002_book_isbn", "skip", "not recorded: nothing to unapply")]


# -- manual steps and progress ------------------------------------------------------


def test_unknown_manual_step_is_refused_listing_the_runbook_s_manual_steps() -> None:
    """--manual-step-done for a step the runbook lacks: refused, with the ones it has."""
    book = runbook(
        forwards("shop.0003_review", manual=[3, 1]),
        forwards("blog.0002_backfill", manual=[0]),
    )
    message = refusal(book, applied=set(), manual_done=["shop.0003_review:2", "shop.0003_review:1"])
    assert message == (
        "preflight refused the runbook (nothing was changed):\n"
        "  --manual-step-done shop.0003_review:2: the runbook has no such manual step "
        "(it has: blog.0002_backfill:0, shop.0003_review:1, shop.0003_review:3)"
    )


def test_unknown_manual_step_in_a_runbook_without_any() -> None:
    """No manual steps at all: the listing says none."""
    message = refusal(runbook(forwards("shop.0001_initial")), applied=set(), manual_done=["shop.0001_initial:0"])
    assert message == (
        "preflight refused the runbook (nothing was changed):\n"
        "  --manual-step-done shop.0001_initial:0: the runbook has no such manual step (it has: none)"
    )


def test_manual_steps_confirmed_now_are_passed() -> None:
    """--manual-step-done shop.0003_review:1 passes step 1; step 3 still stops the run."""
    plans = check(
        runbook(forwards("shop.0003_review", manual=[1, 3])), applied=set(), manual_done=["shop.0003_review:1"]
    )
    assert plans[0].manual_passed == {1}
    pending = plans[0].first_pending_manual()
    assert pending is not None and pending.op == 3


def test_skip_manual_steps_passes_them_all() -> None:
    """--skip-manual-steps: no manual step stops the run."""
    plans = check(runbook(forwards("shop.0003_review", manual=[1, 3])), applied=set(), skip_manual=True)
    assert plans[0].manual_passed == {1, 3}
    assert plans[0].first_pending_manual() is None


def test_manual_steps_passed_in_an_earlier_run_stay_passed() -> None:
    """The journal's manual_done counts as confirmed; the statements done give the resume point."""
    progress = {"shop.0003_review": MigrationProgress(done={1}, manual_done={1})}
    plans = check(
        runbook(forwards("shop.0003_review", manual=[1, 3])),
        applied=set(),
        progress=progress,
        manual_done=["shop.0003_review:3"],
    )
    assert plans[0].manual_passed == {1, 3}
    assert plans[0].progress is progress["shop.0003_review"]
    assert plans[0].resumes_after() == 1


def test_without_confirmation_the_first_manual_step_is_pending() -> None:
    """Nothing confirmed: the first manual step in the block's order stops the run."""
    plans = check(runbook(forwards("shop.0003_review", manual=[3, 1])), applied=set())
    assert plans[0].manual_passed == set()
    pending = plans[0].first_pending_manual()
    assert pending is not None and pending.op == 3


def test_skipped_blocks_take_no_progress_and_no_confirmation() -> None:
    """A recorded migration is skipped: journal progress and confirmations do not apply to it."""
    plans = check(
        runbook(forwards("shop.0003_review", manual=[1])),
        applied=rows("shop.0003_review"),
        progress={"shop.0003_review": MigrationProgress(done={1})},
        manual_done=["shop.0003_review:1"],
    )
    assert (plans[0].action, plans[0].resumes_after(), plans[0].manual_passed) == ("skip", 0, set())


def test_numbered_steps_count_sql_steps_only() -> None:
    """Manual steps have no number; SQL steps are numbered from 1 in order."""
    block = forwards("shop.0003_review", manual=[1])
    assert [(index, step.kind) for index, step in numbered_steps(block)] == [(1, "schema"), (2, "record")]
    assert manual_step_id(block, block.manual_steps[0]) == "shop.0003_review:1"


# -- all problems at once -----------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    """An unknown manual step, a partly recorded squash and a missing dependency, in one refusal."""
    book = runbook(
        forwards("shop.0001_squashed_0002_book_isbn", records=["shop.0001_initial", "shop.0002_book_isbn"]),
        forwards("blog.0002_links", requires=["blog.0001_initial"]),
        forwards("shop.0003_review", requires=["shop.0002_book_isbn"], manual=[1]),
    )
    with pytest.raises(PreflightRefused) as caught:
        check(book, applied=rows("shop.0001_initial"), manual_done=["shop.0003_review:2"])
    assert caught.value.problems == [
        "--manual-step-done shop.0003_review:2: the runbook has no such manual step (it has: shop.0003_review:1)",
        "shop.0001_squashed_0002_book_isbn: only some of its rows are recorded (shop.0001_initial recorded, "
        "shop.0002_book_isbn not recorded); the database changed since the runbook was written: generate it again",
        "blog.0002_links: needs blog.0001_initial, which is neither recorded in django_migrations nor applied "
        "earlier in this runbook",
        "shop.0003_review: needs shop.0002_book_isbn, which is neither recorded in django_migrations nor applied "
        "earlier in this runbook",
    ]
    assert str(caught.value) == "preflight refused the runbook (nothing was changed):\n" + "\n".join(
        f"  {problem}" for problem in caught.value.problems
    )
