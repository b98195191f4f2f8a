"""What happened during one person's stretch of duty, for their handoff summary: the rotation's
incidents opened then, the pages sent to them, the incidents they acknowledged, and the rotation's
incidents still unresolved (handed over to the next person)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.core.handoffs import ShiftSummary
from bot.service.context import Context
from bot.store.tables import Incident, Page

OPEN_SHOWN = 10
_OPEN = ("triggered", "acknowledged")


def summary(
    ctx: Context, session: Session, rotation: str, person: str, since: datetime, until: datetime
) -> ShiftSummary:
    incidents = session.exec(
        select(func.count())
        .select_from(Incident)
        .where(
            col(Incident.rotation) == rotation,
            col(Incident.created_at) >= since,
            col(Incident.created_at) < until,
        )
    ).one()
    pages = session.exec(
        select(func.count())
        .select_from(Page)
        .where(col(Page.person) == person, col(Page.paged_at) >= since, col(Page.paged_at) < until)
    ).one()
    known = ctx.rotations.people.get(person) if ctx.rotations else None
    actors = {person, *((known.slack_id, f"slack:{known.slack_id}") if known and known.slack_id else ())}
    acknowledged = session.exec(
        select(func.count())
        .select_from(Incident)
        .where(
            col(Incident.acknowledged_by).in_(actors),
            col(Incident.acknowledged_at) >= since,
            col(Incident.acknowledged_at) < until,
        )
    ).one()
    still_open = session.exec(
        select(Incident.id, Incident.title)
        .where(col(Incident.rotation) == rotation, col(Incident.status).in_(_OPEN))
        .order_by(col(Incident.id))
        .limit(OPEN_SHOWN + 1)
    ).all()
    shown = tuple(f"#{i} {title}" for i, title in still_open[:OPEN_SHOWN])
    if len(still_open) > OPEN_SHOWN:
        shown += ("and more",)
    return ShiftSummary(int(incidents), int(pages), int(acknowledged), shown)
