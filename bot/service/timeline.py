"""Timeline rows: every change to an incident, with a UTC time and an actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from bot.store.tables import TimelineEntry

_INSERT = insert(TimelineEntry.__table__)  # type: ignore[attr-defined]


def record(
    session: Session,
    incident_id: int,
    at: datetime,
    actor: str,
    kind: str,
    text: str,
    data: dict[str, Any] | None = None,
) -> None:
    # A plain INSERT in the caller's transaction, not an ORM object: an incident writes several
    # rows per change, and building and flushing model instances cost more than the rows themselves.
    session.connection().execute(
        _INSERT,
        {
            "incident_id": incident_id,
            "at": at,
            "actor": actor,
            "kind": kind,
            "text": text,
            "data": data or {},
        },
    )
