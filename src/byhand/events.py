"""What applying reports, as data: the front ends print, draw progress or emit JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, get_args

__all__ = ["EVENT_NAMES", "Event", "EventName", "EventSink", "describe", "to_json"]

#: Everything applying reports, in the order a run reports it.
EventName = Literal[
    "preflight",
    "run-started",
    "migration-skipped",
    "migration-started",
    "statement-took-effect",
    "invalid-index-dropped",
    "statement-started",
    "waiting",
    "statement-done",
    "lock-timeout",
    "blocker-cancelled",
    "blocker-terminated",
    "manual-step",
    "migration-done",
    "run-finished",
]
EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``name`` is one of EventName; ``data`` is JSON-serialisable."""

    name: EventName
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        if self.name not in EVENT_NAMES:
            raise ValueError(f"unknown event name {self.name!r}")


EventSink = Callable[[Event], None]


def to_json(event: Event) -> str:
    """One line of ``--json`` output."""
    return json.dumps({"event": event.name, "time": event.at.isoformat(), **event.data}, default=str)


def _where(data: dict[str, Any]) -> str:
    where = data.get("migration") or f"({data.get('block') or 'run'})"
    if data.get("index") is not None:
        where += f" statement {data['index']}/{data['total']}"
    return where


def _blockers(data: dict[str, Any]) -> str:
    blockers = data.get("blockers") or []
    if not blockers:
        return "nobody found blocking it (the blocker may have finished)"
    return "; ".join(str(b["text"]) for b in blockers)


_TEXT: dict[EventName, Callable[[dict[str, Any]], str]] = {
    "preflight": lambda d: d["text"],
    "run-started": lambda d: f"run {d['run']} started by {d['operator']} on {d['database']}",
    "migration-skipped": lambda d: f"{d['migration']}: skipped, {d['reason']}",
    "migration-started": lambda d: (
        f"[{d['position']}/{d['count']}] {d['migration'] or '(' + d['block'] + ')'}"
        + (f" (resuming after statement {d['resume_after']})" if d.get("resume_after") else "")
    ),
    "statement-started": lambda d: f"  {_where(d)}, attempt {d['attempt']}: {d['summary']}",
    "statement-done": lambda d: f"  {_where(d)} done in {d['elapsed']:.3f}s: {d['summary']}",
    "statement-took-effect": lambda d: f"  {_where(d)}: {d['decision']}",
    "lock-timeout": lambda d: (
        f"  {_where(d)}: lock not granted within {d['lock_timeout']}s (attempt {d['attempt']}); "
        f"blocked by {_blockers(d)}; retrying in {d['retry_in']:.2f}s"
    ),
    "blocker-cancelled": lambda d: f"  cancelled the query of {d['blocker']['text']}",
    "blocker-terminated": lambda d: f"  terminated the session of {d['blocker']['text']}",
    "invalid-index-dropped": lambda d: f"  dropped the INVALID index a failed attempt left: {d['sql']}",
    "waiting": lambda d: f"  {_where(d)}: running {d['elapsed']:.1f}s; {d.get('progress') or _blockers(d)}",
    "manual-step": lambda d: f"  {d['migration']}: manual step {d['step']} ({d['callable']}): {d['status']}",
    "migration-done": lambda d: (
        f"  {d['migration'] or '(' + d['block'] + ')'}: done in {d['elapsed']:.2f}s, {d['attempts']} attempt(s)"
    ),
    "run-finished": lambda d: f"run {d['run']} {d['outcome']} in {d['elapsed']:.2f}s: {d['summary']}",
}


def describe(event: Event) -> str:
    """One line for a person (logs, non-TTY output)."""
    return _TEXT[event.name](event.data)
