"""Use case: PagerDuty tells us about its incidents (Webhooks V3).

From PagerDuty (Webhooks V3): one delivery = one transaction. The delivery's `event.id` and
`X-Webhook-Id` are inserted as `WebhookReceipt` rows together with the effect, so a redelivery finds
them and changes nothing, and two replicas racing on the same delivery collide on the unique key
(the loser retries, sees the receipt, answers "duplicate").

* `incident.triggered` opens an incident (channel, card, runbook) mirroring the PagerDuty incident
  (`external_id`), but never pages: PagerDuty's own escalation runs for it.
* acknowledged / unacknowledged / resolved / reopened become state transitions with the actor
  `pagerduty:<agent>`; one that is not legal from the current state (acknowledged while already
  acknowledged, e.g. our own Slack acknowledgement coming back) is a no-op: no timeline row, no message.
* escalated / reassigned / priority_updated / annotated are timeline rows and channel messages.
* An event about a PagerDuty incident we don't know (the triggered delivery was lost or is still on its
  way) opens the incident from the event's data if PagerDuty says it is still open, then applies the
  event; an unknown resolved incident, or a note on an unknown incident, is ignored (200).
* An incident PagerDuty created from one of our own Events API pages (its `incident_key` is our
  `incidentbot-<id>` dedup key) is not a new incident: its acknowledgement acknowledges ours, every
  other event about it is ignored.
Changes that came from PagerDuty are never sent back to PagerDuty. PagerDuty does not promise order:
an event that arrives late and is illegal from the current state is dropped as above.

Telling PagerDuty about changes made here is `pagerduty_sync`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.incident import Event, Status, can
from bot.core.pagerduty import PagerDutyEvent
from bot.service import pagerduty_details
from bot.service.context import Context
from bot.service.incidents import cancel_paging, lane, resolve_incident, say, sync, transition
from bot.service.pagerduty_mirror import SOURCE, actor_of, open_mirror
from bot.service.pagerduty_sync import DEDUP_PREFIX
from bot.service.timeline import record
from bot.store import outbox
from bot.store.db import transaction
from bot.store.tables import Alert, Incident, WebhookReceipt

log = logging.getLogger(__name__)


class Decision(StrEnum):
    OPENED = "opened"
    CHANGED = "changed"
    NOOP = "noop"  # known incident, nothing to change (e.g. our own acknowledgement coming back)
    DUPLICATE = "duplicate"
    UNKNOWN = "ignored_unknown_incident"
    OWN_PAGE = "ignored_own_page"


@dataclass(frozen=True)
class WebhookResult:
    decision: Decision
    incident_id: int | None = None


# -- from PagerDuty -----------------------------------------------------------------------------------


def receive(
    ctx: Context, event: PagerDutyEvent, *, webhook_id: str | None = None, incident_key: str | None = None
) -> WebhookResult:
    """Apply one webhook event (idempotent per `event.id` and `X-Webhook-Id`)."""
    for attempt in range(3):
        try:
            with transaction(ctx.engine) as session:
                result = _receive(ctx, session, event, webhook_id, incident_key)
            break
        except IntegrityError:
            # A replica stored the same delivery, or opened the same PagerDuty incident, first.
            if attempt == 2:
                raise
            log.info("concurrent PagerDuty delivery %s, retrying", event.id)
    if result.decision in (Decision.OPENED, Decision.CHANGED):
        ctx.wake()
    log.info(
        "pagerduty event",
        extra={
            "event_id": event.id,
            "event_type": event.event_type,
            "pd_incident": event.incident_id,
            "decision": result.decision.value,
            "incident": result.incident_id,
        },
    )
    return result


def receipt_keys(event_id: str, webhook_id: str | None) -> list[str]:
    """The keys a delivery is known by: a redelivery carries one of them again."""
    return [f"event:{event_id}"] + ([f"webhook:{webhook_id}"] if webhook_id else [])


def _receive(
    ctx: Context, session: Session, event: PagerDutyEvent, webhook_id: str | None, incident_key: str | None
) -> WebhookResult:
    now = ctx.clock()
    keys = receipt_keys(event.id, webhook_id)
    seen = session.exec(
        select(WebhookReceipt.id).where(
            col(WebhookReceipt.source) == SOURCE, col(WebhookReceipt.key).in_(keys)
        )
    ).first()
    if seen is not None:
        return WebhookResult(Decision.DUPLICATE)
    for key in keys:
        session.add(WebhookReceipt(source=SOURCE, key=key, received_at=now))
    session.flush()  # a racing replica with the same delivery fails here, before any effect
    return apply(ctx, session, event, incident_key)


def apply(ctx: Context, session: Session, event: PagerDutyEvent, incident_key: str | None) -> WebhookResult:
    """The event's effect, in the caller's transaction (the inbox drain: its receipts were stored
    when it was accepted, so a redelivery never got this far)."""
    now = ctx.clock()
    own = _own_page(session, incident_key)
    if own is not None:
        return _own_page_event(ctx, session, own, event, now)

    incident = session.exec(
        select(Incident).where(col(Incident.external_id) == event.incident_id).with_for_update()
    ).first()
    if incident is None:
        if event.event_type != "incident.triggered" and event.status in (None, "resolved"):
            return WebhookResult(Decision.UNKNOWN)
        incident = open_mirror(ctx, session, event, now)
        if event.status == "acknowledged":
            _acknowledge(ctx, session, incident, event, now)
        return WebhookResult(Decision.OPENED, incident.id)

    shown = pagerduty_details.remember(incident, event)  # new assignees or bridge for the card
    changed = _apply(ctx, session, incident, event, now)
    if shown:
        session.add(incident)
        sync(ctx, session, incident, now)
    return WebhookResult(Decision.CHANGED if changed or shown else Decision.NOOP, incident.id)


def _apply(ctx: Context, session: Session, incident: Incident, event: PagerDutyEvent, now: datetime) -> bool:
    """The known incident after `event`; False when it changes nothing."""
    actor = actor_of(event)
    match event.event_type:
        case "incident.triggered":
            return False  # we have it already (e.g. opened from an earlier acknowledged event)
        case "incident.acknowledged":
            return _acknowledge(ctx, session, incident, event, now)
        case "incident.unacknowledged":
            if not can(Status(incident.status), Event.UNACKNOWLEDGE):
                return False
            transition(ctx, session, incident, Event.UNACKNOWLEDGE, actor, now)
            say(
                session,
                incident,
                now,
                f":rotating_light: Unacknowledged in PagerDuty ({event.agent or 'timeout'}).",
            )
            sync(ctx, session, incident, now)
            _update_pages(session, incident, now)
            return True
        case "incident.resolved":
            if not can(Status(incident.status), Event.RESOLVE):
                return False
            _set_alert(session, incident, "resolved", now)
            resolve_incident(
                ctx,
                session,
                incident,
                now,
                actor,
                f"in PagerDuty by {event.agent or 'PagerDuty'}",
                tell_pagerduty=False,
            )
            return True
        case "incident.reopened":
            if not can(Status(incident.status), Event.REOPEN):
                return False
            transition(ctx, session, incident, Event.REOPEN, actor, now)
            incident.open_key = f"{SOURCE}|{incident.external_id}"
            session.add(incident)
            _set_alert(session, incident, "firing", None)
            say(
                session,
                incident,
                now,
                f":rotating_light: Reopened in PagerDuty by {event.agent or 'PagerDuty'}.",
            )
            sync(ctx, session, incident, now)
            _update_pages(session, incident, now)
            return True
        case "incident.escalated":
            text = f"Escalated in PagerDuty to {', '.join(event.assignees) or 'the next level'}"
            if event.escalation_policy:
                text += f" ({event.escalation_policy})"
            paged = {"assignees": list(event.assignees)}  # whom PagerDuty paged, for the post-mortem
            return _note(
                session, incident, now, actor, "pagerduty_escalated", text, ":arrow_double_up:", paged
            )
        case "incident.reassigned":
            text = f"Reassigned in PagerDuty to {', '.join(event.assignees) or 'nobody'}"
            paged = {"assignees": list(event.assignees)}
            return _note(
                session, incident, now, actor, "pagerduty_reassigned", text, ":busts_in_silhouette:", paged
            )
        case "incident.priority_updated":
            severity = event.severity.value
            text = f"Priority set to {event.priority or 'none'} in PagerDuty"
            if severity != incident.severity:
                text += f": severity {incident.severity} -> {severity}"
                incident.severity = severity
                session.add(incident)
            _note(session, incident, now, actor, "pagerduty_priority", text, ":label:")
            sync(ctx, session, incident, now)
            return True
        case "incident.annotated":
            text = f"Note from {event.agent or 'PagerDuty'}: {event.note or ''}"
            return _note(session, incident, now, actor, "note", text, ":memo:")
    return False


def _acknowledge(
    ctx: Context, session: Session, incident: Incident, event: PagerDutyEvent, now: datetime
) -> bool:
    if not can(Status(incident.status), Event.ACKNOWLEDGE):
        return False  # already acknowledged (in Slack, echoed back by PagerDuty) or resolved
    transition(ctx, session, incident, Event.ACKNOWLEDGE, actor_of(event), now)
    cancel_paging(session, incident, now)
    say(session, incident, now, f":eyes: Acknowledged in PagerDuty by {event.agent or 'PagerDuty'}.")
    sync(ctx, session, incident, now)
    _update_pages(session, incident, now)
    return True


def _note(
    session: Session,
    incident: Incident,
    now: datetime,
    actor: str,
    kind: str,
    text: str,
    icon: str,
    data: dict[str, Any] | None = None,
) -> bool:
    assert incident.id is not None
    record(session, incident.id, now, actor, kind, text, data)
    # PagerDuty text is not ours: escaped at delivery (the emoji code survives escaping).
    say(session, incident, now, f"{icon} {text}")
    return True


def _update_pages(session: Session, incident: Incident, now: datetime) -> None:
    outbox.enqueue(
        session, lane(incident), "update_pages", now, incident_id=incident.id, priority=outbox.COSMETIC
    )


def _set_alert(session: Session, incident: Incident, status: str, ends_at: datetime | None) -> None:
    row = session.exec(
        select(Alert).where(
            col(Alert.incident_id) == incident.id,
            col(Alert.fingerprint) == f"{SOURCE}:{incident.external_id}",
        )
    ).first()
    if row is not None:
        row.status, row.ends_at = status, ends_at
        session.add(row)


def _own_page(session: Session, incident_key: str | None) -> Incident | None:
    """Our incident when PagerDuty's incident was created by one of our Events API pages."""
    if not incident_key or not incident_key.startswith(DEDUP_PREFIX):
        return None
    number = incident_key.removeprefix(DEDUP_PREFIX)
    if not number.isdigit():
        return None
    return session.exec(select(Incident).where(col(Incident.id) == int(number)).with_for_update()).first()


def _own_page_event(
    ctx: Context, session: Session, incident: Incident, event: PagerDutyEvent, now: datetime
) -> WebhookResult:
    if event.event_type == "incident.acknowledged" and _acknowledge(ctx, session, incident, event, now):
        return WebhookResult(Decision.CHANGED, incident.id)
    return WebhookResult(Decision.OWN_PAGE, incident.id)
