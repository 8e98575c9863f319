"""A review for people (a terminal table, a self-contained HTML page) and for programs (JSON).
Pure: data in, text out.

Whatever comes from the runbook or the database (SQL, names, reasons that quote them) is
shown with its control characters escaped as runbook comments escape them (a terminal's
escape sequences, a carriage return that rewrites the line), and on the page HTML-escaped.
"""

from __future__ import annotations

import html
from typing import Any

from byhand.operating.assessing import LEVELS, Thresholds, format_bytes
from byhand.operating.judging import StatementReview
from byhand.operating.reviewing import Review
from byhand.runbook import escape_comment
from byhand.vendors.online import COPY, ENGINE

__all__ = ["JSON_VERSION", "format_review", "review_html", "review_json"]

#: The JSON shape's version (README, "review --json"); raised when a key changes meaning or goes.
JSON_VERSION = 1


def review_json(review: Review) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        **review.header,
        "migrations": [
            {"migration": m.name, "state": m.state, "atomic": m.atomic, "manual_steps": m.manual_steps}
            for m in review.migrations
        ],
        "statements": [statement.as_json() for statement in review.statements],
    }


def _counts(review: Review) -> str:
    pending = [s for s in review.statements if not s.applied]
    counts = {level: sum(s.risk == level for s in pending) for level in reversed(LEVELS)}
    applied = len(review.statements) - len(pending)
    return ", ".join(f"{count} {level}" for level, count in counts.items()) + (
        f" (and {applied} statement(s) applied already)" if applied else ""
    )


def _heading(review: Review) -> list[str]:
    header = review.header
    limits = Thresholds(**header["thresholds"]).describe()
    signed = [
        f"RE-SIGNED by {signature.get('by')} at {signature.get('at')} (was sha256:{signature.get('was')}): its "
        "observations are not byhand's own; each statement is judged at least by what its text says"
        for signature in header.get("signed") or []
    ]
    return [
        *signed,
        f"{header['direction']} runbook sha256:{header['checksum']}, {header['vendor']} {header['server_version']} "
        f"at {header['database']}",
        f"{limits} (--big-rows, --big-bytes)",
        f"sizes read live: {header['sizes']}",
        *(
            [f"bytes estimated, as 'sizes read live' says (locked by another session, so not read live): {estimated}"]
            if (estimated := ", ".join(header.get("estimated_sizes") or []))
            else []
        ),
        f"squawk: {header['squawk']}",
        *(
            ["online runbook (byhand sql --online): statements in safe forms say what they replace"]
            if header.get("online")
            else []
        ),
        f"risk of the statements still to run: {_counts(review)}",
    ]


_MARK = {"high": "!!", "medium": "! ", "low": "  "}
#: The terminal's view names this many tables of a statement, then says how many more.
_TABLES_SHOWN = 3
#: ... and cuts a line of details (why, hazards) this long; --json and --html have it all.
_DETAILS_WIDTH = 300


def _few(tables: list[str]) -> str:
    more = len(tables) - _TABLES_SHOWN
    return ", ".join(tables[:_TABLES_SHOWN]) + (f" … and {more} more" if more > 0 else "") if tables else "-"


def _cut(line: str) -> str:
    more = len(line) - _DETAILS_WIDTH
    return line if more <= 0 else f"{line[:_DETAILS_WIDTH]}… ({more} characters more in --json or --html)"


def _rows(statement: StatementReview) -> str:
    return "?" if statement.rows is None else f"{statement.rows:,}"


def _sql_line(sql: str, width: int = 70) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_review(review: Review, *, title: str) -> str:
    """The terminal table: per migration, one line per statement; a risky one is marked
    (!! high, ! medium) and followed by why, its safer form, hazards and squawk's rules."""
    lines = [title, *(f"  {line}" for line in _heading(review))]
    for migration in review.migrations:
        atomic = "atomic" if migration.atomic else "not atomic"
        lines += ["", f"{migration.name}  ({migration.state}, {atomic})"]
        lines.append(f"     {'#':>3} {'risk':6} {'blocks':16} {'rows':>11} {'size':>9}  {'tables':24} statement")
        for s in migration.statements:
            risk = "applied" if s.applied else (s.risk.upper() if s.risk != "low" else "low")
            mark = "  " if s.applied else _MARK[s.risk]
            blocks = s.blocks or "unknown"
            tables = _few(s.tables)
            lines.append(
                f"  {mark} {s.index:>3} {risk:6} {blocks:16} {_rows(s):>11} {format_bytes(s.bytes):>9}  "
                f"{tables:24} {_sql_line(s.sql)}"
            )
            lines += [_cut(line) for line in _details(s)]
        for step in migration.manual_steps:
            lines.append(f"          MANUAL STEP {step} (runs Python: not reviewed)")
    return "\n".join(escape_comment(line) for line in lines) + "\n"


def _details(statement: StatementReview) -> list[str]:
    details = _online(statement.online)
    if statement.risk != "low" or statement.hazards or statement.squawk:
        details += [f"          why: {'; '.join(statement.reasons)}"] if statement.reasons else []
    if statement.safer:
        details.append(f"          safer: {statement.safer}")
    details += [f"          hazard {hazard.name}: {hazard.text}" for hazard in statement.hazards]
    if statement.squawk:
        details.append(f"          squawk: {', '.join(statement.squawk)}")
    return details


def _online(online: dict[str, Any] | None) -> list[str]:
    """What an online form's part replaces, and why (on its first part)."""
    if not online:
        return []
    if online.get("form") is None and online.get("left"):
        return [
            "          online: left as Django wrote it (its migration's own SQL keeps it one transaction, or the "
            "migration made the table, or the table is partitioned, or a copy would not leave migrate's names: "
            "the runbook's comments say which)"
        ]
    if online.get("form") is None:
        return ["          online: no safe form byhand writes for it; it runs as Django wrote it"]
    said = f"          online: part {online['part']} of {online['of']} of the {online['form']} form"
    if online["part"] != 1:
        return [said]
    if online["form"] == COPY:
        said = f"          online: Django's statement as it is, run by byhand apply through {ENGINE}"
        return [said] + ([f"          because {online['why']}"] if online.get("why") else [])
    instead = f"          instead of Django's {_sql_line(str(online['replaces']))}"
    return [said, instead] + ([f"          because {online['why']}"] if online.get("why") else [])


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1b1b; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
ul.facts { color: #444; } table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.num { text-align: right; white-space: nowrap; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12px/1.3 ui-monospace, monospace; }
tr.high td { background: #fde2e1; } tr.high td.risk { background: #c62828; color: #fff; font-weight: bold; }
tr.medium td { background: #fff4d6; } tr.medium td.risk { background: #f0a800; color: #000; font-weight: bold; }
tr.applied td { color: #888; background: #f6f6f6; } td.risk { text-transform: uppercase; }
.why { font-size: 12px; color: #333; } .state { font-weight: normal; color: #555; }
"""


def _e(text: str) -> str:
    """``text`` for the page: its control characters escaped, then its markup; line by line,
    so that the SQL keeps its lines."""
    return "\n".join(html.escape(escape_comment(line)) for line in text.split("\n"))


def review_html(review: Review, *, title: str) -> str:
    """One self-contained page (inline CSS, no script, nothing fetched) to attach to a change
    request; every text from the runbook or the database is escaped."""
    e = _e
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        '<ul class="facts">' + "".join(f"<li>{e(line)}</li>" for line in _heading(review)) + "</ul>",
    ]
    for migration in review.migrations:
        atomic = "atomic" if migration.atomic else "not atomic"
        parts.append(f'<h2>{e(migration.name)} <span class="state">({e(migration.state)}, {atomic})</span></h2>')
        parts.append(
            "<table><tr><th>#</th><th>risk</th><th>blocks</th><th>rows</th><th>size</th><th>tables</th>"
            "<th>statement, and why</th></tr>"
        )
        parts.extend(_html_row(statement) for statement in migration.statements)
        parts.append("</table>")
        parts.extend(
            f'<p class="why">MANUAL STEP {e(step)} (runs Python: not reviewed)</p>' for step in migration.manual_steps
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_row(s: StatementReview) -> str:
    e = _e
    css = "applied" if s.applied else s.risk
    risk = "applied" if s.applied else s.risk
    notes = "".join(f'<div class="why">{e(line.strip())}</div>' for line in _details(s) or [])
    return (
        f'<tr class="{e(css)}"><td class="num">{s.index}</td><td class="risk">{e(risk)}</td>'
        f'<td>{e(s.blocks or "unknown")}</td><td class="num">{_rows(s)}</td>'
        f'<td class="num">{format_bytes(s.bytes)}</td><td>{e(", ".join(s.tables) or "-")}</td>'
        f"<td><pre>{e(s.sql)}</pre>{notes}</td></tr>"
    )
