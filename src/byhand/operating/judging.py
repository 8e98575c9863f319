"""Each statement of a runbook judged against table sizes: what it acts on, what it blocks
(its own locks and, inside BEGIN … COMMIT, those earlier statements of its transaction still
hold on its tables), whether it rewrites or reads every row, its risk and reasons, a safer
form, Django's hazards. Pure: the sizes are given (byhand.operating.reviewing reads them).

What a statement did comes from its marker's "observed" (the rehearsal on the scratch copy);
without it, what its text says (the tables it names, whether it reads every row, and the
locks it asks for: byhand.vendors.text_locks, a floor of what it blocks). A re-signed
runbook's observations may not be byhand's own (an edit re-signed can say "locks": []):
there its text is the floor of every statement (its tables, scan, locks, ALGORITHM).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from byhand.hazards import Hazard, find_hazards, key_changes
from byhand.operating.assessing import RiskLevel, Thresholds, created_by, is_row_write, judge, scans
from byhand.operating.preflight import numbered_steps
from byhand.runbook import Control, Runbook, Step
from byhand.vendors import get_vendor
from byhand.vendors.online import COPY, ENGINE, OnlineForm
from byhand.vendors.reviewing import Blocks, ReviewFacts, TableSize, stronger, unknown_lock
from byhand.vendors.statements import tables_named_in
from byhand.vendors.text_locks import describe_text_locks

__all__ = ["Key", "StatementReview", "assess_runbook", "statement_tables"]

#: Statements on an index or a sequence: whatever their text names is no table.
_ON_NO_TABLE = re.compile(r"^\s*(?:ALTER|DROP)\s+(?:INDEX|SEQUENCE)\b", re.IGNORECASE)

#: (block position in the runbook, statement number in the block, as apply counts).
Key = tuple[int, int]


@dataclass
class StatementReview:
    migration: str  # as apply names the block: app.name, (setup), (replacements)
    index: int
    kind: str  # schema, record, setup
    sql: str
    observed: bool
    tables: list[str]
    new_tables: list[str]
    locks: list[dict[str, Any]]  # {"table", "mode"}; a mode None where the runbook gives none
    held: list[dict[str, Any]]  # locks earlier statements of its transaction hold on its tables
    blocks: Blocks | None
    rewrites: list[str]
    scan: bool
    algorithm: str | None
    sizes: dict[str, TableSize]
    risk: RiskLevel = "low"
    reasons: list[str] = field(default_factory=list)
    safer: str | None = None
    hazards: list[Hazard] = field(default_factory=list)
    squawk: list[str] = field(default_factory=list)
    applied: bool = False
    #: What its text says it takes, where it was not observed ("observed"'s shape; not in --json).
    text: dict[str, Any] | None = None
    #: Part of an online form (``byhand sql --online``): its step's "online" marker.
    online: dict[str, Any] | None = None

    @property
    def rewrite(self) -> bool:
        return bool(self.rewrites)

    @property
    def rows(self) -> int | None:
        known = [size.rows for size in self.sizes.values() if size.rows is not None]
        return max(known) if known else None

    @property
    def bytes(self) -> int | None:
        known = [size.bytes for size in self.sizes.values() if size.bytes is not None]
        return max(known) if known else None

    def as_json(self) -> dict[str, Any]:
        return {
            "migration": self.migration,
            "index": self.index,
            "kind": self.kind,
            "sql": self.sql,
            "applied": self.applied,
            "observed": self.observed,
            "tables": self.tables,
            "new_tables": self.new_tables,
            "locks": self.locks,
            "held": self.held,
            "blocks": self.blocks,
            "rewrite": self.rewrite,
            "rewrites": self.rewrites,
            "scan": self.scan,
            "algorithm": self.algorithm,
            "rows": self.rows,
            "bytes": self.bytes,
            "sizes": {t: {"rows": s.rows, "bytes": s.bytes} for t, s in self.sizes.items()},
            "risk": self.risk,
            "reasons": self.reasons,
            "safer": self.safer,
            "hazards": [hazard.as_dict() for hazard in self.hazards],
            "squawk": self.squawk,
            "online": self.online,
        }


def _in_transaction(block_items: list[Any]) -> dict[int, int]:
    """The transaction each step (by id) runs in: the number of the block's BEGIN … COMMIT
    around it (an online block has several), 0 outside any."""
    count, inside, within = 0, 0, {}
    for item in block_items:
        if isinstance(item, Control) and item.sql == "BEGIN;":
            count += 1
            inside = count
        elif isinstance(item, Control) and item.sql == "COMMIT;":
            inside = 0
        elif isinstance(item, Step):
            within[id(item)] = inside
    return within


def _from_text(
    step: Step, *, facts: ReviewFacts | None, index_tables: Mapping[str, str]
) -> tuple[list[str], dict[str, Any] | None]:
    """The tables a statement's text names, and what it says it takes (None: it does not say)."""
    named = [] if _ON_NO_TABLE.match(step.sql) else list(dict.fromkeys(tables_named_in(step.sql)))
    text = None if facts is None else facts.text_locks(step.sql, tables=named, index_tables=index_tables)
    return list(dict.fromkeys([*named, *(text or {}).get("tables", [])])), text


def statement_tables(
    step: Step,
    *,
    facts: ReviewFacts | None = None,
    index_tables: Mapping[str, str] | None = None,
    distrust: bool = False,
) -> list[str]:
    """The tables a statement acts on: as observed, else as its text names them (with
    ``facts``, those it locks by its text too: a DROP INDEX's, from ``index_tables``); with
    ``distrust`` (a re-signed runbook), both."""
    if _tables_observed(step, distrust):
        return _observed_tables(step)
    return _with_text(step, _from_text(step, facts=facts, index_tables=index_tables or {})[0])


def _tables_observed(step: Step, distrust: bool) -> bool:
    """Whether the statement's tables are the observed ones alone (not its text's too)."""
    return "tables" in (step.observed or {}) and not distrust


def _observed_tables(step: Step) -> list[str]:
    return [str(table) for table in (step.observed or {}).get("tables") or []]


def _with_text(step: Step, named: list[str]) -> list[str]:
    """The tables its text names, then those observed: the table a statement works through
    is the first its text names."""
    return list(dict.fromkeys([*named, *_observed_tables(step)]))


def assess_runbook(
    runbook: Runbook,
    *,
    facts: ReviewFacts,
    sizes: Mapping[str, TableSize],
    thresholds: Thresholds,
    applied: Callable[[int, int], bool] = lambda position, index: False,
    index_tables: Mapping[str, str] | None = None,
) -> dict[Key, StatementReview]:
    """Every SQL statement of ``runbook`` judged against ``sizes``, keyed by (block position,
    statement number). Tables created by statements not yet ``applied`` count as new.
    ``index_tables``: the table of each index a statement not observed drops."""
    distrust = bool(runbook.header.get("signed"))  # re-signed: "observed" may be edited
    created: set[str] = set()
    changes = key_changes(runbook)
    reviews: dict[Key, StatementReview] = {}
    for position, block in enumerate(runbook.blocks):
        name = block.migration or f"({block.kind})"
        hazards = find_hazards(block, changes=changes)
        within = _in_transaction(block.items)
        carried: list[dict[str, Any]] = []  # locks taken earlier in the open transaction
        transaction, form = 0, None
        for index, step in numbered_steps(block):
            done = applied(position, index)
            if within.get(id(step), 0) != transaction or not transaction:
                carried.clear()  # a transaction of its own, or none: nothing held before it
                transaction = within.get(id(step), 0)
            review = _assess(
                step,
                name=name,
                index=index,
                facts=facts,
                sizes=sizes,
                carried=carried,
                index_tables=index_tables or {},
                distrust=distrust,
                split=block.online,
            )
            if not done:  # new: made earlier (or by it), or filled by it from another table
                before = set(created)
                created_by(step.sql, created)
                review.new_tables = [t for t in review.tables if t in before | created]
            form = _online(review, step, runbook.vendor, form)
            _judge(review, _as_run(review, step, form), facts=facts, thresholds=thresholds)
            review.applied = done
            review.hazards = hazards.get(index, [])
            formed = (
                step.kind == "schema" and get_vendor(runbook.vendor).online_form(step.sql, step.observed) is not None
            )
            if review.online:
                review.safer = None  # it is the safer form
            elif runbook.header.get("online") and step.kind == "schema" and review.risk != "low":
                # An online runbook, and this statement as Django wrote it: it has no form, or
                # it was left so (its migration's own SQL, a table made there, partitioned).
                review.online = {"form": None, "left": formed}
            elif review.safer and formed:
                review.safer += "; byhand sql --online writes it"
            reviews[(position, index)] = review
            if transaction:
                taken = [*review.locks, *(review.text or {}).get("locks", [])]
                carried.extend({**lock, "statement": index} for lock in taken)
    return reviews


def _as_run(review: StatementReview, step: Step, form: OnlineForm | None) -> Mapping[str, Any] | None:
    """What the rehearsal observed of ``step``, as it runs: through an engine (``form``), its
    copy is what holds the table (or does not), not the algorithm the statement would take."""
    if form is None or form.kind != COPY or step.observed is None:
        return step.observed
    review.algorithm = ENGINE
    return {**step.observed, "algorithm": ENGINE, "lock": "NONE"}


def _online(review: StatementReview, step: Step, vendor: str, form: OnlineForm | None) -> OnlineForm | None:
    """For a part of an online form (the form of its first part, derived by the vendor from
    the statement it replaces): its marker in the review, why the form replaces the statement
    on the first part, and whether it reads every row (SET NOT NULL after a validated CHECK
    does not, whatever its text says). Returns the form the next part belongs to."""
    if not step.online:
        return None
    number = int(step.online.get("part", 0))
    if number == 1:
        form = get_vendor(vendor).online_form(str(step.online.get("replaces")), step.observed)
        review.online = {**step.online, "why": form.why if form is not None else None}
    else:
        review.online = dict(step.online)
    if form is not None and 0 < number <= len(form.parts):
        review.scan = form.parts[number - 1].scans
    return form


def _assess(
    step: Step,
    *,
    name: str,
    index: int,
    facts: ReviewFacts,
    sizes: Mapping[str, TableSize],
    carried: list[dict[str, Any]],
    index_tables: Mapping[str, str],
    distrust: bool,
    split: bool = False,
) -> StatementReview:
    observed = step.observed
    if not _tables_observed(step, distrust):  # its text counts: read once
        named, text = _from_text(step, facts=facts, index_tables=index_tables)
        tables = _with_text(step, named)
        if observed is not None and not distrust:
            text = None  # observed, without tables (a hand-made "observed"): only the tables are the text's
    else:
        tables, text = _observed_tables(step), None
    locks = [_lock(lock) for lock in (observed or {}).get("locks") or []]
    held = list({(lock["table"], lock["mode"]): lock for lock in reversed(carried) if lock["table"] in tables}.values())
    held.reverse()  # each lock once, as the first statement that took it
    # What the rehearsal saw its transaction hold already (not in an online block: the
    # rehearsal's one transaction is split there, so what is held comes from its BEGIN/COMMIT).
    if observed and "held" in observed and not distrust and not split:
        taken = {(lock["table"], lock["mode"]): lock["statement"] for lock in carried}
        held = [
            {**lock, "statement": taken.get((lock["table"], lock["mode"]))}
            for lock in map(_lock, observed["held"] or [])
        ]
    rewrites = [str(t) for t in (observed or {}).get("rewrites") or []]
    rewrites = list(dict.fromkeys([*rewrites, *(text or {}).get("rewrites", [])]))
    scan = bool(observed.get("scan")) if observed and "scan" in observed else scans(step.sql)
    scan = scan or (distrust and scans(step.sql)) or bool((text or {}).get("scan"))
    algorithm = (observed or {}).get("algorithm")
    if text and text.get("algorithm") not in (None, "DEFAULT"):
        algorithm = text["algorithm"]  # the ALGORITHM its text asks for, which the server obeys or refuses
    return StatementReview(
        migration=name,
        index=index,
        kind=step.kind,
        sql=step.sql,
        observed=observed is not None,
        tables=tables,
        new_tables=[],
        locks=locks,
        held=held,
        blocks=None,
        rewrites=rewrites or (tables if str(algorithm or "").upper() == "COPY" else []),
        scan=scan,
        algorithm=None if algorithm is None else str(algorithm),
        sizes={t: sizes[t] for t in tables if t in sizes},
        text=text,
    )


def _lock(lock: Mapping[str, Any]) -> dict[str, Any]:
    mode = lock.get("mode")
    return {"table": str(lock.get("table")), "mode": None if mode is None else str(mode)}


def _judge(
    review: StatementReview, data: Mapping[str, Any] | None, *, facts: ReviewFacts, thresholds: Thresholds
) -> None:
    """Fill in what the statement blocks, its risk and reasons, and its safer form."""
    observed = review.observed
    blocks, reasons = facts.blocks(data)
    if review.kind != "schema":  # django_migrations' rows (locks none but its own), or its creation
        review.blocks, review.risk, review.reasons = "none", "low", ["byhand's bookkeeping (django_migrations)"]
        return
    unclear = observed and blocks is None  # observed, but what its locks block is unknown
    if review.text is not None:  # what its text says it takes: a floor
        floor, _ = facts.blocks(review.text)
        if floor is not None:
            blocks = stronger(blocks, floor)
            reasons.append(f"{describe_text_locks(review.text)} (from its text)")
    taken = [*review.locks, *(review.text or {}).get("locks", [])]
    exclusive = [lock["table"] for lock in taken if facts.lock_blocks(lock["mode"]) == "reads and writes"]
    for lock in review.held:
        carried = facts.lock_blocks(lock["mode"])
        by = f"statement {lock['statement']}" if lock.get("statement") else "an earlier statement"
        if carried is None:
            unclear = True
            said, _, why = unknown_lock(lock).partition(": ")
            reasons.append(f"holds {said}, taken by {by}, until COMMIT" + (f": {why}" if why else ""))
        elif carried != "none":
            blocks = stronger(blocks, carried)
            reasons.append(f"holds {lock['mode']} on {lock['table']}, taken by {by}, until COMMIT")
            if carried == "reads and writes":
                exclusive.append(lock["table"])
    if is_row_write(review.sql):
        blocks = stronger(blocks, "writes")
        reasons.append("locks the rows it changes until its transaction ends")
    # A lock of a mode byhand does not know may block more than the others: what they block is
    # only a floor, judged as such (and at least medium); what it blocks is shown unknown.
    floor = None if unclear and blocks == "none" else blocks
    if blocks == "reads and writes" and not review.locks and not review.held:
        exclusive.extend(review.tables)
    heavy = []
    if review.rewrite:
        copy = str(review.algorithm).upper() == "COPY"
        heavy.append(f"rewrites {', '.join(review.rewrites) or 'its table'}" + (" (ALGORITHM=COPY)" if copy else ""))
    if review.scan:
        heavy.append("reads every row" + ("" if observed else " (from its text)"))
    judgement = judge(
        tables=review.tables,
        new=set(review.new_tables),
        sizes=review.sizes,
        blocks=floor,
        heavy=heavy,
        exclusive=exclusive,
        thresholds=thresholds,
        observed=observed,
        unclear=bool(unclear),
        # What makes it long: the tables it rewrites, the one it reads through (the first it names).
        worked=[*review.rewrites, *review.tables[: int(review.scan)]] if heavy else None,
    )
    review.blocks = None if unclear and blocks != "reads and writes" else blocks
    review.risk = judgement.risk
    review.reasons = ([] if observed else ["not observed on the scratch copy"]) + reasons
    review.reasons += judgement.reasons
    if not observed and not review.tables and review.risk == "low":  # a DO block, a statement unknown here
        review.reasons.append("its text names no table byhand can tell: what it acts on is unknown")
        review.risk = "medium"
    review.safer = facts.safer(review.sql, data or review.text) if review.risk != "low" else None
