"""The review as a person reads it, without a database: whatever the runbook holds (SQL,
table and migration names, manual steps) reaches the terminal with its control characters
escaped and the HTML page escaped; a statement on many tables lists a few."""

from __future__ import annotations

import re
from typing import Any

from byhand.operating.assessing import Thresholds
from byhand.operating.judging import assess_runbook
from byhand.operating.review_report import format_review, review_html, review_json
from byhand.operating.reviewing import MigrationReview, Review
from byhand.runbook import Block, Control, Runbook, Step, has_control_character
from byhand.vendors.reviewing import REVIEW_FACTS, TableSize

#: What a hand-edited runbook may carry: a terminal's escape sequences (clear the screen,
#: set the window title, colours), a bell, a carriage return that rewrites the line, markup.
EVIL = "\x1b[2J\x1b]0;owned\x07\rok<b onmouseover=x>"
MANY = [f"shop_part_{n:02}" for n in range(50)]


def evil_review() -> Review:
    """One migration named with EVIL: a statement whose SQL and observed table hold it, one on
    50 tables (observed), and a manual step whose callable holds it."""
    update = Step(
        kind="schema",
        sql=f'UPDATE "shop_book" SET "title" = \'{EVIL}\';',
        op=0,
        observed={"tables": [f"shop{EVIL}"], "locks": [{"table": f"shop{EVIL}", "mode": "FooLock"}], "scan": True},
    )
    truncate = Step(
        kind="schema",
        sql=f"TRUNCATE {', '.join(MANY)};",
        op=1,
        observed={"tables": MANY, "locks": [{"table": t, "mode": "AccessExclusiveLock"} for t in MANY], "scan": False},
    )
    manual = Step(kind="manual", op=2, callable=f"shop.migrations.fill{EVIL}")
    block = Block(
        kind="migration",
        atomic=True,
        migration=f"shop.0002_{EVIL}",
        items=[Control("BEGIN;"), update, truncate, manual, Control("COMMIT;")],
    )
    runbook = Runbook(header={"direction": "forwards", "vendor": "postgresql"}, blocks=[block])
    sizes = {f"shop{EVIL}": TableSize(200_000, 10**8), **{t: TableSize(200_000, 10**8) for t in MANY}}
    reviews = assess_runbook(runbook, facts=REVIEW_FACTS["postgresql"], sizes=sizes, thresholds=Thresholds())
    statements = [review for (_, _), review in reviews.items()]
    statements[0].squawk = [f"rule{EVIL}"]
    header: dict[str, Any] = {
        "checksum": "c0ffee",
        "direction": "forwards",
        "vendor": "postgresql",
        "database": f"postgresql://db{EVIL}",
        "server_version": "16.4",
        "sizes": "live",
        "squawk": "squawk 2",
        "thresholds": {"big_rows": 100_000, "big_bytes": 100 * 1024 * 1024},
    }
    migration = MigrationReview(
        str(block.migration), "pending", True, statements, ["operation 2: " + str(manual.callable)]
    )
    return Review(header, [migration])


def test_the_terminal_shows_control_characters_escaped() -> None:
    """No control character but the line breaks reaches the terminal: each is written as
    escape_comment writes it (\\x1b, \\x07, \\r), on every line that quotes the runbook."""
    text = format_review(evil_review(), title=f"byhand review of r{EVIL}.sql")
    assert not has_control_character(text.replace("\n", "")), repr(text)
    escaped = "\\x1b[2J\\x1b]0;owned\\x07\\rok<b onmouseover=x>"
    assert f"byhand review of r{escaped}.sql" in text
    assert f"shop.0002_{escaped}  (pending, atomic)" in text
    assert f"MANUAL STEP operation 2: shop.migrations.fill{escaped} (runs Python: not reviewed)" in text
    assert f"FooLock on shop{escaped}: a lock mode byhand does not know" in text
    assert f"squawk: rule{escaped}" in text


def test_the_terminal_lists_a_few_of_many_tables() -> None:
    """A statement on 50 tables: the first three, then how many more, in its line and in its
    reasons; --json and --html keep them all."""
    text = format_review(evil_review(), title="r")
    line = next(line for line in text.splitlines() if "TRUNCATE" in line)
    assert "shop_part_00, shop_part_01, shop_part_02 … and 47 more" in line
    assert all(len(line) < 400 for line in text.splitlines()), max(map(len, text.splitlines()))
    assert "shop_part_49" not in text
    page = review_html(evil_review(), title="r")
    assert "shop_part_49" in page


def test_the_html_page_escapes_everything_the_runbook_holds() -> None:
    """No markup from the runbook survives (the title, names, SQL, reasons, manual steps,
    squawk's rules are all escaped), and its control characters are shown escaped too."""
    page = review_html(evil_review(), title=f"byhand review of r{EVIL}.sql")
    assert "<b onmouseover" not in page
    assert page.count("&lt;b onmouseover=x&gt;") >= 6
    assert not has_control_character(page.replace("\n", "")), repr(page)
    tags = set(re.findall(r"</?([a-zA-Z0-9]+)", page))
    assert tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "span",
        "ul",
        "li",
        "table",
        "tr",
        "th",
        "td",
        "pre",
        "div",
        "p",
    }, tags


def test_a_re_signed_runbook_is_said_first_everywhere() -> None:
    """Re-signed: the terminal's first lines, the page's facts and the JSON say so, and that
    its observations are not byhand's own."""
    review = evil_review()
    review.header["signed"] = [{"by": "mallory@host", "at": "2026-12-01T03:00:00+00:00", "was": "c0ffee"}]
    said = (
        "RE-SIGNED by mallory@host at 2026-12-01T03:00:00+00:00 (was sha256:c0ffee): its observations are not "
        "byhand's own; each statement is judged at least by what its text says"
    )
    assert format_review(review, title="t").splitlines()[1] == f"  {said}"
    assert f"<li>{said.replace(chr(39), '&#x27;')}</li>" in review_html(review, title="t")
    assert review_json(review)["signed"] == review.header["signed"]
    assert "RE-SIGNED" not in format_review(evil_review(), title="t")


def test_bidirectional_controls_are_shown_escaped() -> None:
    """Trojan Source: a right-to-left override (and the other bidirectional controls) in the
    SQL or a name would display the text reordered; the terminal and the page show them
    escaped (\\u202e) and keep the rest as it is."""
    review = evil_review()
    sql = 'UPDATE "shop_book" SET "title" = \'x\' /*\u202e } \u2066if admin\u2069 \u2067{ */;\u200e\u200f\u061c'
    review.migrations[0].statements[0].sql = sql
    review.migrations[0].name = "shop.0002_\u202eevil"
    text = format_review(review, title="t")
    page = review_html(review, title="t")
    for shown in (text, page):
        assert not has_control_character(shown.replace("\n", "")), repr(shown)
        assert "\\u202e } \\u2066if admin\\u2069 \\u2067{ */;\\u200e\\u200f\\u061c" in shown
        assert "shop.0002_\\u202eevil" in shown
