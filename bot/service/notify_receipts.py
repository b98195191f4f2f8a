"""Receipts followed after a page went out: Pushover's emergency priority says later whether the
person acknowledged it in the app.

A followed receipt is one `receipt` timer per notification (its payload: the receipt, the page,
the incident's paging cycle, when to ask next and until when). When it is due, the timer enqueues
a `receipt_check` outbox row (the worker asks the provider: no network call runs inside a timer's
transaction); the check's outcome acknowledges the incident as the paged person, ends the
following (expired, unknown receipt), or sets the timer again. Once the incident no longer waits
(acknowledged in Slack or by SMS, resolved, reopened), a pending timer becomes a `receipt_cancel`
row instead, so the provider stops repeating the page on the person's phone.

Every step is a row committed with what caused it: a crash loses no check and no cancellation.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot.service.context import Context
from bot.service.timeline import record
from bot.store import outbox
from bot.store.db import reading
from bot.store.tables import Incident, Notification, Page, Timer

log = logging.getLogger(__name__)

KIND = "receipt"
CHECK, CANCEL = "receipt_check", "receipt_cancel"


def timer_key(notification_id: int) -> str:
    return f"n{notification_id}"


def _lane(payload: dict[str, Any]) -> str:
    return f"notify:{payload['page_id']}:{payload['method']}"


def _waiting(incident: Incident | None, payload: dict[str, Any]) -> bool:
    """The incident still waits for an acknowledgement in the cycle the page belongs to."""
    return (
        incident is not None
        and incident.status == "triggered"
        and incident.paging_cycle == int(payload.get("cycle", -1))
    )


def _enqueue(session: Session, op: str, incident_id: int, payload: dict[str, Any], now: datetime) -> None:
    outbox.enqueue(session, _lane(payload), op, now, payload, incident_id=incident_id, priority=outbox.PAGE)


def follow(
    session: Session,
    incident: Incident,
    n: Notification,
    receipt: str,
    every: timedelta,
    for_: timedelta,
    at_most: timedelta,
    now: datetime,
) -> None:
    """The provider gave a receipt worth following (in the transaction recording the page sent)."""
    assert incident.id is not None and n.id is not None
    payload = {
        "notification_id": n.id,
        "receipt": receipt,
        "method": n.method,
        "page_id": n.page_id,
        "person": n.person,
        "cycle": incident.paging_cycle,
        "every": every.total_seconds(),
        "at_most": at_most.total_seconds(),
        "until": (now + for_).isoformat(),
    }
    if not _waiting(incident, payload):  # acknowledged while the page was on its way
        _enqueue(session, CANCEL, incident.id, payload, now)
        return
    timer = Timer(incident_id=incident.id, kind=KIND, key=timer_key(n.id), due_at=now + every)
    timer.payload = payload
    session.add(timer)


def on_timer(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """Due: ask the provider (an outbox row), or cancel the receipt if the incident stopped waiting."""
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    incident = session.get(Incident, timer.incident_id)
    if incident is None or incident.id is None:
        return
    if not _waiting(incident, timer.payload):
        _enqueue(session, CANCEL, incident.id, timer.payload, now)
    elif now < datetime.fromisoformat(timer.payload["until"]):
        _enqueue(session, CHECK, incident.id, timer.payload, now)
    # Past `until` the provider has stopped repeating the page itself: nothing more to ask.


def cancel_pending(session: Session, incident: Incident, now: datetime) -> None:
    """The incident no longer waits (acknowledged, resolved, reopened): every receipt still
    followed is cancelled at the provider (in the caller's transaction)."""
    assert incident.id is not None
    timers = session.exec(
        select(Timer)
        .where(col(Timer.incident_id) == incident.id, col(Timer.kind) == KIND, col(Timer.status) == "pending")
        .with_for_update()
    ).all()
    for timer in timers:
        timer.status, timer.fired_at = "cancelled", now
        session.add(timer)
        _enqueue(session, CANCEL, incident.id, timer.payload, now)


def acknowledge(ctx: Context, payload: dict[str, Any], detail: str) -> bool:
    """Acknowledged in the provider's app: acknowledge the incident as the paged person (their own
    transaction, before the check's row settles; done twice, the second changes nothing)."""
    from bot.service import responders  # responders -> incidents -> notify_plan -> this module

    with reading(ctx.engine) as session:
        page = session.get(Page, int(payload["page_id"]))
        incident = session.get(Incident, page.incident_id) if page else None
    if page is None or incident is None or incident.id is None or not _waiting(incident, payload):
        return False
    actor = f"slack:{page.slack_user}" if page.slack_user else page.person
    answer = responders.acknowledge(ctx, incident.id, actor, page_id=page.id, via=str(payload["method"]))
    if answer.changed:
        log.info("incident %s acknowledged through a %s receipt (%s)", incident.id, payload["method"], detail)
    return answer.changed


def checked(
    session: Session, payload: dict[str, Any], acknowledged: bool, over: bool, detail: str, now: datetime
) -> None:
    """The check's outcome, settled with its row: follow on, or stop (and say why when it expired)."""
    timer = session.exec(
        select(Timer).where(
            col(Timer.kind) == KIND, col(Timer.key) == timer_key(int(payload["notification_id"]))
        )
    ).first()
    incident = session.exec(
        select(Incident).where(col(Incident.id) == (timer.incident_id if timer else None)).with_for_update()
    ).first()
    if timer is None or incident is None or incident.id is None:
        return
    if acknowledged or over:
        if not acknowledged:  # expired, or unknown there: the escalation goes on without it
            text = f"{payload['method'].capitalize()} page to {payload['person']}: {detail}"
            record(session, incident.id, now, "bot", "receipt", text, {**payload, "detail": detail})
        return
    if not _waiting(incident, payload):
        _enqueue(session, CANCEL, incident.id, payload, now)
        return
    if timer.status == "fired":  # not cancelled meanwhile: ask again, a little later each time
        every = float(timer.payload.get("every", payload["every"]))
        timer.status, timer.fired_at = "pending", None
        timer.due_at = now + timedelta(seconds=every)
        limit = float(payload.get("at_most", every))
        timer.payload = {**timer.payload, "every": min(limit, every * 1.5)}
        session.add(timer)


def cancelled(session: Session, payload: dict[str, Any], incident_id: int | None, now: datetime) -> None:
    if incident_id is None:
        return
    method, person = payload["method"].capitalize(), payload["person"]
    text = f"Stopped the {method} repeats to {person}: the incident no longer waits"
    record(session, incident_id, now, "bot", "receipt", text, payload)
