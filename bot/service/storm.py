"""Alert storms: past STORM_THRESHOLD new incidents from one route within STORM_WINDOW, further
alert groups fold into one storm incident (one channel, one page, a live list of its groups).

A folded group is still an incident row (so retries of its notifications stay idempotent and it
resolves on its own), but with `parent_id` set and no channel, card or page of its own. The storm
incident resolves when every group it holds has resolved.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.core.alerts import Notification
from bot.core.incident import OPEN_STATUSES, Event, Severity, Status
from bot.core.text import TITLE_MAX, truncate
from bot.service import escalation
from bot.service.context import Context
from bot.service.incidents import open_incident, resolve_incident, sync, transition
from bot.service.timeline import record
from bot.store.db import advisory_lock, is_postgres
from bot.store.tables import Incident

_SEVERITY_RANK = {Severity.SEV1.value: 1, Severity.SEV2.value: 2, Severity.SEV3.value: 3}


def route_key(ctx: Context, labels: dict[str, str]) -> str | None:
    if ctx.rotations is None:
        return None
    rotation, matched = ctx.rotations.rotation_for(labels)
    return f"{rotation.name}:{matched.line if matched else 0}"


def _storm(session: Session, storm_key: str) -> Incident | None:
    return session.exec(select(Incident).where(col(Incident.open_key) == storm_key).with_for_update()).first()


def _recent(ctx: Context, session: Session, key: str, now: datetime) -> int:
    """New incidents (not folded groups) opened from this route within the storm window."""
    return session.exec(
        select(func.count(col(Incident.id))).where(
            col(Incident.route_key) == key,
            col(Incident.parent_id).is_(None),
            col(Incident.created_at) >= now - ctx.storm.window,
        )
    ).one()


def storm_for(ctx: Context, session: Session, key: str | None, now: datetime) -> Incident | None:
    """The open storm incident new groups of this route fold into, opening it if the route is
    over its threshold; None while the route is calm."""
    if key is None:
        return None
    storm_key = f"storm|{key}"
    existing = _storm(session, storm_key)
    if existing is not None:
        return existing
    recent = _recent(ctx, session, key, now)
    if is_postgres(ctx.engine) and recent >= ctx.storm.threshold // 2:
        # Near the threshold, openings from one route count one after another (replicas or threads
        # opening at once would each see the route under it and open extra channels). Calm routes
        # never wait for this lock.
        advisory_lock(session, f"storm:{key}")
        existing = _storm(session, storm_key)
        if existing is not None:
            return existing
        recent = _recent(ctx, session, key, now)
    if recent < ctx.storm.threshold:
        return None
    rotation = key.rsplit(":", 1)[0]
    incident = open_incident(
        ctx,
        session,
        source="storm",
        title=f"Alert storm: many alert groups for {rotation}",
        severity=Severity.SEV3,
        slug_source=f"alert-storm-{rotation}",
        now=now,
        actor="bot",
        open_key=storm_key,
        common_annotations={
            "summary": f"More than {ctx.storm.threshold} incidents opened for {rotation} within "
            f"{int(ctx.storm.window.total_seconds() // 60)}m; further alert groups are listed here."
        },
    )
    incident.rotation = rotation
    incident.route_key = key
    escalation.start(ctx, session, incident, {}, now)
    return incident


def fold(ctx: Context, session: Session, storm: Incident, note: Notification, now: datetime) -> Incident:
    """A new alert group joins the storm as a channel-less child incident."""
    assert storm.id is not None
    child = Incident(
        source="alertmanager",
        title=truncate(note.title, TITLE_MAX),
        severity=note.severity.value,
        status=Status.TRIGGERED.value,
        open_key=note.key,
        group_key=note.key,
        group_labels=dict(note.group_labels),
        common_annotations=dict(note.common_annotations),
        external_url=note.external_url,
        channel_name=f"{storm.channel_name}#{note.key}"[:500],  # never created: the storm's channel is used
        channel_id=storm.channel_id,
        created_at=now,
        parent_id=storm.id,
        route_key=storm.route_key,
        rotation=storm.rotation,
    )
    session.add(child)
    session.flush()
    assert child.id is not None
    record(
        session,
        child.id,
        now,
        "alertmanager",
        "opened",
        f"Folded into storm incident #{storm.id}: {note.title}",
    )
    record(
        session,
        storm.id,
        now,
        "alertmanager",
        "storm_group",
        f"Group added: {note.title}",
        {"child_id": child.id, "group_key": note.key},
    )
    if _SEVERITY_RANK.get(child.severity, 3) < _SEVERITY_RANK.get(storm.severity, 3):
        storm.severity = child.severity  # the storm is as severe as its worst group
        session.add(storm)
        escalation.retime(ctx, session, storm, now)  # and escalates at that severity's pace
    sync(ctx, session, storm, now)
    return child


def resolve_child(ctx: Context, session: Session, child: Incident, now: datetime) -> None:
    """A folded group resolved: mark it, update the storm's list, resolve the storm when all are."""
    transition(ctx, session, child, Event.RESOLVE, "alertmanager", now)
    storm = session.get(Incident, child.parent_id)
    if storm is None:
        return
    assert storm.id is not None
    record(
        session,
        storm.id,
        now,
        "alertmanager",
        "storm_group",
        f"Group resolved: {child.title}",
        {"child_id": child.id},
    )
    still_open = session.exec(
        select(func.count(col(Incident.id))).where(
            col(Incident.parent_id) == storm.id,
            col(Incident.status).in_([s.value for s in OPEN_STATUSES]),
        )
    ).one()
    if still_open == 0 and storm.status in (Status.TRIGGERED, Status.ACKNOWLEDGED):
        resolve_incident(
            ctx, session, storm, now, "alertmanager", "by Alertmanager: every group of the storm resolved"
        )
    else:
        sync(ctx, session, storm, now)


def children(session: Session, storm_id: int) -> list[Incident]:
    return list(
        session.exec(select(Incident).where(col(Incident.parent_id) == storm_id).order_by(col(Incident.id)))
    )
