"""vendors/statements.py: another session's query with its literals hidden; no database."""

from __future__ import annotations

import pytest

from byhand.vendors.statements import normalize_query


@pytest.mark.parametrize(
    ("query", "mysql", "normalized"),
    [
        (
            "select 'stripe_key=sk_live_51H', 42 from probe_item where id = 3",
            False,
            "select ?, ? from probe_item where id = ?",
        ),
        ("SELECT * FROM t1 WHERE x = E'a\\'b' AND y = $$secret$$", False, "SELECT * FROM t1 WHERE x = ? AND y = ?"),
        ('select "abc" from "t2"', False, 'select "abc" from "t2"'),
        ('select "password" from `t2`', True, "select ? from `t2`"),
        ("select 'a query the server cut sho", False, "select ?"),
        (
            "update t set a=1.5e3 where b in (1,2,-3) and c2 = 'x'",
            False,
            "update t set a=? where b in (?,?,?) and c2 = ?",
        ),
    ],
)
def test_literals_are_replaced_names_kept(query: str, mysql: bool, normalized: str) -> None:
    """Strings (quoted, escaped, dollar-quoted, cut short) and numbers become ?; names stay."""
    assert normalize_query(query, double_quoted_strings=mysql) == normalized
