"""Use cases that move an incident through its life from Slack: reopen, close, severity, lead."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.errors import IllegalTransition
from bot.core.incident import Event, Severity, Status
from bot.core.permissions import Action
from bot.service import escalation
from bot.service.context import Context
from bot.service.incidents import cancel_paging, lane, say, sync, transition
from bot.service.permissions import require
from bot.service.postmortem import enqueue_postmortem
from bot.service.responders import Answer, load, mention
from bot.service.timeline import record
from bot.store import outbox
from bot.store.db import transaction
from bot.store.tables import Incident, Timer


def reopen(ctx: Context, incident_id: int, actor: str) -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.REOPEN, actor)
        now = ctx.clock()
        transition(ctx, session, incident, Event.REOPEN, actor, now)
        _cancel_archive(session, incident)
        # An Alertmanager group takes its incident back unless the group already opened a new one.
        if (
            incident.group_key
            and not session.exec(
                select(Incident.id).where(col(Incident.open_key) == incident.group_key)
            ).first()
        ):
            incident.open_key = incident.group_key
        say(
            session,
            incident,
            now,
            f":arrows_counterclockwise: Reopened by {mention(actor)}; paging again.",
            trusted=True,
        )
        escalation.restart(ctx, session, incident, now)
        sync(ctx, session, incident, now)
    ctx.wake()
    return Answer(f"Incident #{incident_id} reopened; the escalation starts again.", changed=True)


def close(ctx: Context, incident_id: int, actor: str, archive_after: timedelta | None) -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.CLOSE, actor)
        if incident.status == Status.TRIGGERED or incident.status == Status.ACKNOWLEDGED:
            raise IllegalTransition(
                f"Incident #{incident_id} is {incident.status}: resolve it first (`/incident resolve`)."
            )
        now = ctx.clock()
        transition(ctx, session, incident, Event.CLOSE, actor, now)
        cancel_paging(session, incident, now)
        say(
            session,
            incident,
            now,
            f":lock: Closed by {mention(actor)}. The post-mortem draft follows.",
            trusted=True,
        )
        sync(ctx, session, incident, now)
        enqueue_postmortem(session, incident, now)
        if archive_after:
            session.add(
                Timer(
                    incident_id=incident.id,
                    kind="archive",
                    key=f"close{incident.paging_cycle}",
                    due_at=now + archive_after,
                )
            )
    ctx.wake()
    archived = f"; the channel is archived in {format_duration(archive_after)}" if archive_after else ""
    return Answer(f"Incident #{incident_id} closed{archived}.", changed=True)


def _cancel_archive(session: Session, incident: Incident) -> None:
    for timer in session.exec(
        select(Timer).where(
            col(Timer.incident_id) == incident.id,
            col(Timer.kind) == "archive",
            col(Timer.status) == "pending",
        )
    ):
        timer.status = "cancelled"
        session.add(timer)


def set_severity(ctx: Context, incident_id: int, actor: str, severity: Severity) -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.SEVERITY, actor)
        if incident.severity == severity.value:
            return Answer(f"Incident #{incident_id} is already {severity.value}.")
        now = ctx.clock()
        before, incident.severity = incident.severity, severity.value
        session.add(incident)
        escalation.retime(ctx, session, incident, now)
        assert incident.id is not None
        record(
            session,
            incident.id,
            now,
            actor,
            "severity",
            f"Severity {before} -> {severity.value}",
            {"from": before, "to": severity.value},
        )
        say(
            session,
            incident,
            now,
            f"Severity changed from {before} to *{severity.value}* by {mention(actor)}.",
            trusted=True,
        )
        sync(ctx, session, incident, now)
    ctx.wake()
    return Answer(f"Severity is now {severity.value}.", changed=True)


def set_lead(ctx: Context, incident_id: int, actor: str, user_id: str) -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.LEAD, actor)
        now = ctx.clock()
        incident.lead = f"slack:{user_id}"
        session.add(incident)
        assert incident.id is not None
        record(session, incident.id, now, actor, "lead", f"Incident lead: {user_id}", {"lead": user_id})
        say(
            session,
            incident,
            now,
            f":large_blue_circle: <@{user_id}> is the incident lead (set by {mention(actor)}).",
            trusted=True,
        )
        outbox.enqueue(session, lane(incident), "invite", now, {"users": [user_id]}, incident_id=incident.id)
        sync(ctx, session, incident, now)
    ctx.wake()
    return Answer(f"<@{user_id}> leads incident #{incident_id}.", changed=True)


def postmortem_again(ctx: Context, incident_id: int, actor: str) -> Answer:
    """`/incident postmortem`: write and upload the draft again, any time after resolution."""
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.POSTMORTEM, actor)
        if incident.status not in (Status.RESOLVED, Status.CLOSED):
            raise IllegalTransition(f"Incident #{incident_id} is {incident.status}: resolve it first.")
        now = ctx.clock()
        enqueue_postmortem(session, incident, now)
        assert incident.id is not None
        record(session, incident.id, now, actor, "postmortem_requested", "Post-mortem draft requested")
    ctx.wake()
    return Answer("Writing the post-mortem draft; it will be uploaded to this channel.", changed=True)


def archive_due(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """The archive timer of a closed incident fired: archive its channel (if still closed)."""
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    incident = session.get(Incident, timer.incident_id)
    if incident is not None and incident.status == Status.CLOSED:
        outbox.enqueue(
            session, lane(incident), "archive", now, incident_id=incident.id, priority=outbox.COSMETIC
        )
