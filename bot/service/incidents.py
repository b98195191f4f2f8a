"""Use cases shared by every source: open an incident, change its status, keep Slack in sync."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from bot.core.incident import OPEN_STATUSES, Event, IncidentState, Severity, Status, apply
from bot.core.notify_rules import SLACK_NOW, NotifyRule
from bot.core.rotations import Person
from bot.core.text import TITLE_MAX, channel_name, truncate
from bot.service import notify_plan, pagerduty_sync
from bot.service.context import Context
from bot.service.timeline import record
from bot.store import outbox
from bot.store.tables import Incident, Page, Timer

# How an acknowledgement's channel reads in the timeline (Slack's stays implicit: it always was).
VIA_NAMES = {
    "ack_link": "acknowledge link",
    "sms": "SMS reply",
    "voice": "voice call",
    "pushover": "Pushover",
}


def lane(incident: Incident) -> str:
    """Calls about one incident's channel are delivered in order, in this lane."""
    return incident_lane(incident.id)


def incident_lane(incident_id: int | None) -> str:
    return f"incident:{incident_id}"


def page_lane(incident: Incident) -> str:
    """Pages have their own lane: a DM never waits for the channel, its card or a slow Slack call
    about them (the DM links the channel by name until it exists)."""
    return f"page:{incident.id}"


def send_page(
    session: Session,
    incident: Incident,
    page: Page,
    now: datetime,
    rules: Sequence[NotifyRule] = SLACK_NOW,
    person: Person | None = None,
    *,
    said: bool = False,
) -> None:
    """Store `page` and start the person's notification `rules` (default: a Slack DM now): the
    DM goes in the incident's page lane, ahead of cosmetic work; see `notify_plan`. `said`: the
    channel was already told who this step pages, so the delivered page adds no line there."""
    session.add(page)
    session.flush()
    notify_plan.plan(session, incident, page, rules, person, now, page_lane(incident), said=said)
    refresh_card(session, incident, now)  # the card lists who is paged


def _insert_with_channel_name(ctx: Context, session: Session, incident: Incident, slug_source: str) -> None:
    """Insert with the first free `inc-<day>-<slug>[-N]`: each name is tried under a savepoint, so
    two replicas opening the same alert at once take different names instead of failing."""
    day = incident.created_at.strftime("%Y%m%d")
    base = channel_name(ctx.channel_prefix, day, slug_source)
    for suffix in range(_next_suffix(session, base), 10_000):
        incident.channel_name = channel_name(ctx.channel_prefix, day, slug_source, suffix)
        try:
            with session.begin_nested():
                session.add(incident)
                session.flush()
            return
        except IntegrityError as exc:
            if "channel_name" not in str(exc.orig):
                raise  # another unique key (the group's open key): the caller retries as a join
    raise IntegrityError("no free channel name", None, Exception("channel_name"))


def _next_suffix(session: Session, base: str) -> int:
    """Where to start probing: after the highest `-N` in use (an index range scan, not a probe per
    name, so the 500th incident of one alert on one day costs no more than the first)."""
    names = session.exec(
        select(Incident.channel_name).where(
            col(Incident.channel_name) >= base, col(Incident.channel_name) < base + "~"
        )
    )
    used = [
        1 if n == base else int(n[len(base) + 1 :])
        for n in names
        if n == base or n[len(base) + 1 :].isdigit()
    ]
    return max(used, default=0) + 1


def open_incident(
    ctx: Context,
    session: Session,
    *,
    source: str,
    title: str,
    severity: Severity,
    slug_source: str,
    now: datetime,
    actor: str,
    open_key: str | None = None,
    group_key: str | None = None,
    group_labels: dict[str, str] | None = None,
    common_annotations: dict[str, str] | None = None,
    external_url: str = "",
    previous: Incident | None = None,
) -> Incident:
    incident = Incident(
        source=source,
        title=truncate(title, TITLE_MAX),
        severity=severity.value,
        status=Status.TRIGGERED.value,
        open_key=open_key,
        group_key=group_key,
        group_labels=group_labels or {},
        common_annotations=common_annotations or {},
        external_url=external_url,
        previous_id=previous.id if previous else None,
        channel_name="",
        created_at=now,
    )
    _insert_with_channel_name(ctx, session, incident, slug_source)
    assert incident.id is not None
    text = f"Incident opened: {title} ({severity.value})"
    if previous is not None:
        text += f"; the group fired again after incident #{previous.id}"
    record(session, incident.id, now, actor, "opened", text, {"previous_id": incident.previous_id})

    key = lane(incident)
    outbox.enqueue(session, key, "create_channel", now, incident_id=incident.id, priority=outbox.CHANNEL)
    outbox.enqueue(session, key, "post_card", now, incident_id=incident.id, priority=outbox.CHANNEL)
    outbox.enqueue(session, key, "sync", now, incident_id=incident.id, priority=outbox.COSMETIC)
    if ctx.announce_channel:
        outbox.enqueue(session, key, "announce", now, incident_id=incident.id)
    if previous is not None and previous.channel_id:
        say(
            session,
            incident,
            now,
            f"This alert group fired again. Previous incident: <#{previous.channel_id}>",
            trusted=True,
        )
    return incident


def state_of(incident: Incident) -> IncidentState:
    return IncidentState(
        status=Status(incident.status),
        created_at=incident.created_at,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        first_acknowledged_at=incident.first_acknowledged_at,
        resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by,
        closed_at=incident.closed_at,
    )


def transition(
    ctx: Context,
    session: Session,
    incident: Incident,
    event: Event,
    actor: str,
    now: datetime,
    via: str | None = None,
) -> None:
    """Apply a state-machine event (IllegalTransition propagates) and record it; `via`: where an
    acknowledgement came from (slack, ack_link, sms, ...), kept in the entry's data for reports."""
    before = incident.status
    state = apply(state_of(incident), event, actor, now)
    incident.status = state.status.value
    incident.acknowledged_at, incident.acknowledged_by = state.acknowledged_at, state.acknowledged_by
    incident.first_acknowledged_at = state.first_acknowledged_at
    incident.resolved_at, incident.resolved_by = state.resolved_at, state.resolved_by
    incident.closed_at = state.closed_at
    if state.status in (Status.RESOLVED, Status.CLOSED):
        incident.open_key = None
    session.add(incident)
    assert incident.id is not None
    text = f"{before} -> {state.status.value}"
    data = {"from": before, "to": state.status.value, "event": event.value}
    if via is not None:
        data["via"] = via
        text += f" (via {VIA_NAMES.get(via, via)})" if via != "slack" else ""
    record(session, incident.id, now, actor, "status", text, data)


def resolve_incident(
    ctx: Context,
    session: Session,
    incident: Incident,
    now: datetime,
    actor: str,
    why: str,
    *,
    trusted: bool = False,
    tell_pagerduty: bool = True,
) -> None:
    """Resolve, whoever resolved it; PagerDuty hears of it unless PagerDuty is who told us."""
    transition(ctx, session, incident, Event.RESOLVE, actor, now)
    if incident.source == "storm":
        _resolve_folded(ctx, session, incident, actor, now)
    cancel_paging(session, incident, now)
    expire_silences(session, incident, now)
    incident.silenced_until = incident.silenced_by = None  # the card shows no silence once resolved
    if tell_pagerduty:
        pagerduty_sync.mirror(session, incident, "resolved", now, api=ctx.pagerduty_api)
    say(session, incident, now, f":white_check_mark: Resolved {why}.", trusted=trusted)
    sync(ctx, session, incident, now)
    outbox.enqueue(
        session, lane(incident), "update_pages", now, incident_id=incident.id, priority=outbox.COSMETIC
    )


def _resolve_folded(ctx: Context, session: Session, storm: Incident, actor: str, now: datetime) -> None:
    """The groups a storm holds resolve with it: left open under a resolved storm, a group would
    take its new alerts in silently instead of opening an incident that pages."""
    folded = session.exec(
        select(Incident).where(
            col(Incident.parent_id) == storm.id,
            col(Incident.status).in_([s.value for s in OPEN_STATUSES]),
        )
    )
    for child in folded.all():
        transition(ctx, session, child, Event.RESOLVE, actor, now)


def say(session: Session, incident: Incident, now: datetime, text: str, *, trusted: bool = False) -> None:
    """Post `text` in the incident channel. Untrusted text is escaped at delivery."""
    outbox.enqueue(
        session, lane(incident), "say", now, {"text": text, "trusted": trusted}, incident_id=incident.id
    )


def sync(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    """Bring the card, the topic and the announcement up to date (coalesced, cosmetic)."""
    refresh_card(session, incident, now)


def refresh_card(session: Session, incident: Incident, now: datetime) -> None:
    """`sync` for callers without a context (a page sent, a page failed)."""
    outbox.enqueue(session, lane(incident), "sync", now, incident_id=incident.id, priority=outbox.COSMETIC)


def cancel_paging(session: Session, incident: Incident, now: datetime) -> int:
    """Cancel every pending escalation timer of the incident (acknowledged, resolved), and every
    notification of its pages that has not gone out yet, by any method."""
    result = session.exec(  # type: ignore[call-overload]
        update(Timer)
        .where(
            col(Timer.incident_id) == incident.id,
            col(Timer.status) == "pending",
            col(Timer.kind).in_(("escalation", "final_notice", notify_plan.KIND)),
        )
        .values(status="cancelled", fired_at=now)
    )
    notify_plan.cancel(session, incident, now)
    return int(result.rowcount or 0)


def expire_silences(
    session: Session, incident: Incident, now: datetime, ids: list[str] | None = None, *, by: str = ""
) -> None:
    """Silences made from the card (all, or `ids`) end with the incident (resolved or closed), or
    when `by` unsilences it."""
    ids = list(incident.silences) if ids is None else ids
    if ids:
        outbox.enqueue(
            session,
            f"alertmanager:{incident.id}",
            "expire_silences",
            now,
            {"ids": ids, "by": by},
            incident_id=incident.id,
        )
