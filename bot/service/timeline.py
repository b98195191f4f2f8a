"""Timeline rows: every change to an incident, with a UTC time and an actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.store.tables import TimelineEntry


def record(
    session: Session,
    incident_id: int,
    at: datetime,
    actor: str,
    kind: str,
    text: str,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(incident_id=incident_id, at=at, actor=actor, kind=kind, text=text, data=data or {})
    session.add(entry)
    return entry
