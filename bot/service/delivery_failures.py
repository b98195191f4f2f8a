"""Use case: an outbox row about an incident failed for good; record it and tell people once.

Runs in the transaction that records the row as failed. The line goes to the announce channel (the
incident's own channel when none is set) as a `say` row marked `notice`: a notice that fails is
never announced in turn, so a broken announce channel cannot start a loop.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.delivery_failures import failure_notice
from bot.service.incidents import incident_lane
from bot.service.timeline import record
from bot.store import outbox
from bot.store.tables import TimelineEntry

KIND = "delivery_failed"


def report_failure(session: Session, incident_id: int, op: str, error: str, now: datetime) -> None:
    text = failure_notice(op, error, incident_id)
    if text is None:
        return
    said = session.exec(
        select(TimelineEntry.data).where(
            col(TimelineEntry.incident_id) == incident_id, col(TimelineEntry.kind) == KIND
        )
    )
    if any(data.get("op") == op and data.get("error") == error for data in said):
        return  # said once per incident, operation and error: a broken channel is not a flood
    record(
        session, incident_id, now, "bot", KIND, f"Slack answered {error} to {op}", {"op": op, "error": error}
    )
    outbox.enqueue(
        session,
        incident_lane(incident_id),
        "say",
        now,
        {"text": text, "trusted": True, "channel": "announce", "notice": True},
        incident_id=incident_id,
    )
