"""Use cases driven by people in Slack: acknowledge, escalate, resolve.

Each returns an `Answer` for the person who clicked or typed: a polite sentence, never a trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.errors import UnknownIncident
from bot.core.incident import Event, Status
from bot.core.people import unknown_name
from bot.core.permissions import Action
from bot.core.text import escape, safe_mrkdwn
from bot.service import escalation, pagerduty_sync
from bot.service.context import Context
from bot.service.incidents import VIA_NAMES, cancel_paging, lane, resolve_incident, say, sync, transition
from bot.service.permissions import require
from bot.store import outbox
from bot.store.db import reading, transaction
from bot.store.tables import Incident


@dataclass(frozen=True)
class Answer:
    text: str
    changed: bool = False


def mention(actor: str | None) -> str:
    """An actor in Slack text: a mention for a Slack user, else a name (`pagerduty:Jane` is
    "Jane (PagerDuty)", never the prefix)."""
    if actor and actor.startswith("slack:"):
        return f"<@{actor.removeprefix('slack:')}>"
    return escape(unknown_name(actor)) if actor else "someone"


def load(session: Session, incident_id: int) -> Incident:
    incident = session.exec(select(Incident).where(col(Incident.id) == incident_id).with_for_update()).first()
    if incident is None:
        raise UnknownIncident(f"There is no incident #{incident_id}.")
    return incident


def by_channel(ctx: Context, channel_id: str) -> int | None:
    """The incident whose own channel this is. Incidents living in a thread (their channel could not
    be made) share the announce channel or a DM with others: a command there names none of them."""
    with reading(ctx.engine) as session:
        return session.exec(
            select(Incident.id).where(
                col(Incident.channel_id) == channel_id,
                col(Incident.parent_id).is_(None),
                col(Incident.thread_ts).is_(None),
            )
        ).first()


def acknowledge(
    ctx: Context, incident_id: int, actor: str, *, page_id: int | None = None, via: str = "slack"
) -> Answer:
    """`page_id`: the click came from that page's DM (only its recipient may use it). `via`: where
    the acknowledgement came from (slack, ack_link, sms, voice, pushover...): in the timeline, the
    post-mortem and `incidentbot report`'s "acknowledged via"."""
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.ACK, actor, page_id=page_id)
        now = ctx.clock()
        if incident.status == Status.ACKNOWLEDGED:
            ago = format_duration(now - incident.acknowledged_at) if incident.acknowledged_at else "a while"
            return Answer(f"Already acknowledged by {mention(incident.acknowledged_by)} {ago} ago.")
        if incident.status in (Status.RESOLVED, Status.CLOSED):
            return Answer(
                f"Incident #{incident_id} is already {incident.status}; there is nothing to acknowledge."
            )
        transition(ctx, session, incident, Event.ACKNOWLEDGE, actor, now, via=via)
        cancel_paging(session, incident, now)
        after = format_duration(now - incident.created_at)
        here_only = pagerduty_sync.here_only(incident, ctx.pagerduty_api)
        note = f", here only: {pagerduty_sync.NOT_UPDATED}" if here_only else ""
        say(
            session,
            incident,
            now,
            f":eyes: Acknowledged by {mention(actor)} after {after}{_via(via)}{note}.",
            trusted=True,
        )
        sync(ctx, session, incident, now)
        outbox.enqueue(
            session, lane(incident), "update_pages", now, incident_id=incident.id, priority=outbox.NORMAL
        )
        pagerduty_sync.mirror(session, incident, "acknowledged", now, api=ctx.pagerduty_api)
    ctx.wake()
    if here_only:  # PagerDuty keeps escalating: saying "escalation stopped" would be a false promise
        return Answer(f"Acknowledged here only: {pagerduty_sync.NOT_UPDATED}.", changed=True)
    return Answer(
        f"You acknowledged incident #{incident_id} after {after}; escalation stopped.", changed=True
    )


def _via(via: str) -> str:
    return "" if via == "slack" else f" (via {escape(VIA_NAMES.get(via, via))})"


def resolve(ctx: Context, incident_id: int, actor: str, summary: str = "") -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.RESOLVE, actor)
        if incident.status in (Status.RESOLVED, Status.CLOSED):
            return Answer(f"Incident #{incident_id} is already {incident.status}.")
        why = f"by {mention(actor)}" + (f": {safe_mrkdwn(summary)}" if summary else "")
        here_only = pagerduty_sync.here_only(incident, ctx.pagerduty_api)
        if here_only:
            why += f", here only: {pagerduty_sync.NOT_UPDATED}"
        now = ctx.clock()
        resolve_incident(ctx, session, incident, now, actor, why, trusted=True)
    ctx.wake()
    if here_only:
        return Answer(f"Resolved here only: {pagerduty_sync.NOT_UPDATED}.", changed=True)
    return Answer(f"You resolved incident #{incident_id}.", changed=True)


def escalate(
    ctx: Context, incident_id: int, actor: str, *, page_id: int | None = None, via: str = "slack"
) -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.ESCALATE, actor, page_id=page_id)
        if incident.status != Status.TRIGGERED:
            return Answer(
                f"Incident #{incident_id} is {incident.status}; escalation only runs while unacknowledged."
            )
        if incident.source == "pagerduty":
            return Answer("PagerDuty runs the escalation of this incident: escalate it in PagerDuty.")
        text = escalation.escalate_now(ctx, session, incident, actor, ctx.clock(), via=via)
    ctx.wake()
    return Answer(text, changed=True)
