"""``byhand sql --online``: a migration block whose statements have online forms
(byhand.vendors.online), rewritten to run them.

Django's statement stays above its form as comment lines, and in the first part's marker
("replaces"), so that a reviewer reads both and ``check_block`` can derive the form again.
The migration no longer runs as one transaction: its statements run in Django's order, in
transactions that end before each part that must not share one (an index built
CONCURRENTLY, a VALIDATE CONSTRAINT reading the rows while what the statements before it
locked is free again); the django_migrations row is written with the last of them, after
every validation. apply's journal resumes such a block statement by statement.

Left as Django wrote it: a statement on a table the same migration created (it is empty,
and no other session sees it before the migration commits) or on a table the vendor says
the forms do not work on (PostgreSQL's partitioned tables and their partitions), and a
migration with manual steps (what its Python code needs may be what the one transaction
gave it).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace

from byhand.runbook import Block, Comment, Control, Item, Step
from byhand.vendors import Vendor
from byhand.vendors.online import COPY, OnlineForm, unquote

__all__ = ["keys_dropped", "put_online"]

_DROPS_KEY = re.compile(r"^ALTER TABLE (`(?:[^`]|``)+`) DROP FOREIGN KEY ")
_CREATE_TABLE = re.compile(r'^CREATE TABLE ("(?:[^"]|"")+"|`(?:[^`]|``)+`)')


def put_online(
    block: Block,
    vendor: Vendor,
    *,
    exempt: Collection[str] = (),
    whole: str | None = None,
    keys_dropped_later: Collection[str] = (),
) -> int:
    """Rewrite ``block`` to run the online forms of its statements (none on the ``exempt``
    tables); how many it replaced. ``whole``: why the migration must stay one transaction
    (its own SQL may rely on it): then it is left as it is, with a comment saying why.
    ``keys_dropped_later``: tables a later migration of the runbook drops a foreign key of
    (see _copy_keeps_names)."""
    if block.kind != "migration" or block.manual_steps:
        return 0
    transactional = block.atomic and vendor.transactional_ddl
    placed = {*vendor.before_migration(transaction=transactional), *vendor.after_migration(transaction=transactional)}
    if any(isinstance(item, Control) and item.sql not in placed for item in block.items):
        return 0  # a control statement of the vendor's own (SQLite's PRAGMAs): not a place for forms
    items: list[Item] = [item for item in block.items if not isinstance(item, Control)]
    forms, declined = _forms(items, vendor, exempt, keys_dropped_later)
    if not forms:
        for position, text in declined.items():  # said where the statement stands
            block.items.insert(block.items.index(items[position]), Comment(text))
        return 0
    if whole is not None and transactional:
        block.items.insert(0, Comment(f"-- online: {len(forms)} statement(s) left as Django wrote them: {whole}"))
        return 0
    opening = vendor.before_migration(transaction=transactional)
    closing = vendor.after_migration(transaction=transactional)
    block.items = _rewritten(items, forms, declined, opening=opening, closing=closing)
    block.atomic, block.online = False, True
    return len(forms)


def _forms(
    items: list[Item], vendor: Vendor, exempt: Collection[str], keys_dropped_later: Collection[str]
) -> tuple[dict[int, OnlineForm], dict[int, str]]:
    """The online form of each statement that has one, by position, on tables the
    migration did not create and that are not ``exempt``; and, by position, the comment
    of each copy declined (see _copy_keeps_names)."""
    kept: set[str] = set(exempt)  # tables whose statements stay as Django wrote them
    forms: dict[int, OnlineForm] = {}
    declined: dict[int, str] = {}
    for position, item in enumerate(items):
        if not isinstance(item, Step) or item.kind != "schema":
            continue
        made = _CREATE_TABLE.match(item.sql)
        if made:
            kept.add(unquote(made.group(1)))
        form = vendor.online_form(item.sql, item.observed)
        if form is None or form.table in kept:
            continue
        if _copy_keeps_names(form, items[position:], keys_dropped_later):
            forms[position] = form
        else:
            declined[position] = (
                f"-- online: left as Django wrote it: a later statement drops a foreign key of {form.table}, and "
                "after a copy the index MariaDB made for that key would keep its old name where migrate renames it"
            )
    return forms, declined


def _copy_keeps_names(form: OnlineForm, rest: list[Item], keys_dropped_later: Collection[str]) -> bool:
    """Whether a copy of the table by an engine (``form``) leaves the names migrate leaves.
    The index MariaDB makes for a foreign key is marked as made for it: when the key is
    dropped and another added on the same columns, the server renames it after the new
    key. A copy declares it, unmarked, and the server keeps its old name. So a copy is not
    made of a table a later statement drops a foreign key of (the statement stays as Django
    wrote it: review names it)."""
    if form.kind != COPY:
        return True
    found = (_DROPS_KEY.match(item.sql) for item in rest if isinstance(item, Step))
    later = {unquote(match.group(1)) for match in found if match}
    return form.table not in {*keys_dropped_later, *later}


def keys_dropped(block: Block) -> set[str]:
    """The tables whose foreign keys ``block`` drops (MySQL/MariaDB's ALTER TABLE … DROP FOREIGN KEY)."""
    found = (_DROPS_KEY.match(step.sql) for step in block.steps)
    return {unquote(match.group(1)) for match in found if match}


def _unheld(step: Step) -> Step:
    """``step`` without what the rehearsal saw its transaction hold already: that was
    Django's one transaction, which the online block splits (review reads what is held
    from the block's BEGIN/COMMIT instead)."""
    if not step.observed or "held" not in step.observed:
        return step
    observed = {key: value for key, value in step.observed.items() if key != "held"}
    return replace(step, observed=observed)


def _rewritten(
    items: list[Item],
    forms: dict[int, OnlineForm],
    declined: dict[int, str],
    *,
    opening: list[str],
    closing: list[str],
) -> list[Item]:
    """``items`` with each replaced statement's form in its place; between ``opening`` and
    ``closing`` (BEGIN and COMMIT, none when the migration was not atomic) the statements that
    may share a transaction, each other part outside."""
    out: list[Item] = []
    open_transaction = False

    def transaction(wanted: bool) -> None:
        nonlocal open_transaction
        if wanted and opening and not open_transaction:
            out.extend(Control(sql) for sql in opening)
        elif not wanted and open_transaction:  # before the comments that head what comes next
            at = len(out)
            while at and isinstance(out[at - 1], Comment):
                at -= 1
            out[at:at] = [Control(sql) for sql in closing]
        open_transaction = wanted and bool(opening)

    for position, item in enumerate(items):
        form = forms.get(position)
        if form is None:
            if isinstance(item, Step):
                transaction(True)
            if position in declined:
                out.append(Comment(declined[position]))
            out.append(_unheld(item) if isinstance(item, Step) else item)
            continue
        assert isinstance(item, Step)
        transaction(form.parts[0].runs == "with")
        if [part.sql for part in form.parts] == [item.sql]:  # run as it is, by an engine
            out.append(Comment(f"-- online ({form.kind}): {form.why}."))
        else:
            out.append(Comment(f"-- online ({form.kind}): {form.why}. Django's statement:"))
            out.extend(Comment(f"--   {line}") for line in item.sql.splitlines())
        for number, part in enumerate(form.parts, 1):
            online: dict[str, object] = {"form": form.kind, "part": number, "of": len(form.parts)}
            if number == 1:
                online["replaces"] = item.sql
            transaction(part.runs == "with")
            observed = item.observed if form.observed else None
            out.append(Step(kind="schema", sql=part.sql, op=item.op, online=online, observed=observed))
    transaction(False)
    return out
