"""A page's notification rules as rows: the rules due now become notifications (rows of the
`notification` table, each with its outbox row), later ones become `notify` timers.

Everything here runs inside the caller's transaction (the page's, the timer's, a failure's), so a
rule fires exactly once: its timer is marked fired, or its notifications inserted (unique per page,
rule and method), in the same commit as the outbox rows that deliver them.

Slack goes through the existing `page` outbox operation (the DM with its buttons); every other
method through `notify`, in a lane of its own per page and method, so one slow provider never
holds up another or the DM. Both carry page priority.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from bot.core.notify_rules import SLACK_NOW, NotifyRule, contact_for
from bot.core.rotations import Person
from bot.service import notify_receipts
from bot.store import outbox
from bot.store.tables import Incident, Notification, Outbox, Page, Timer

KIND = "notify"
# How long a method of the person's last rule is retried (5xx, timeouts) before it counts as failed.
LAST_RULE_WINDOW = timedelta(minutes=10)


def timer_key(page_id: int, rule: int) -> str:
    return f"p{page_id}r{rule}"


def plan(
    session: Session,
    incident: Incident,
    page: Page,
    rules: Sequence[NotifyRule],
    person: Person | None,
    now: datetime,
    page_lane: str,
    *,
    said: bool = False,
) -> None:
    """The person's rules for this page: those due now fire, the others wait as timers. `said`:
    the channel already names whom this step pages (the DM adds no line there)."""
    assert page.id is not None and incident.id is not None
    rules = tuple(rules) or SLACK_NOW
    for index, rule in enumerate(rules):
        due = page.paged_at + rule.after
        until = page.paged_at + rules[index + 1].after if index + 1 < len(rules) else due + LAST_RULE_WINDOW
        payload = {
            "page_id": page.id,
            "rule": index,
            "via": list(rule.via),
            "addresses": {m: _address(page, person, m) for m in rule.via},
            "retry_until": until.isoformat(),
            "last": index + 1 == len(rules),
            **({"said": True} if said else {}),
        }
        if due <= now:
            timer = Timer(incident_id=incident.id, kind=KIND, key=timer_key(page.id, index), due_at=due)
            timer.status, timer.fired_at, timer.payload = "fired", now, payload
            session.add(timer)
            fire(session, incident, page, payload, now, page_lane)
        else:
            key = timer_key(page.id, index)
            session.add(Timer(incident_id=incident.id, kind=KIND, key=key, due_at=due, payload=payload))


def _address(page: Page, person: Person | None, method: str) -> str:
    if method == "slack":
        return page.slack_user or page.email or ""
    return (contact_for(person, method) if person else None) or ""


def fire(
    session: Session, incident: Incident, page: Page, payload: dict, now: datetime, page_lane: str
) -> list[str]:
    """Insert the notifications of one rule and the outbox rows that deliver them; the methods."""
    assert page.id is not None
    via: list[str] = list(payload["via"])
    rule = int(payload["rule"])
    for method in via:
        notification = Notification(
            incident_id=incident.id,
            page_id=page.id,
            person=page.person,
            rule=rule,
            method=method,
            address=str(payload.get("addresses", {}).get(method, "")),
            created_at=now,
        )
        session.add(notification)
        session.flush()
        if method == "slack":
            # Before a DM that is the rule's only method, Slack's Do Not Disturb is asked: a
            # paused person moves to the next rule at once (only worth asking if there is one).
            dnd = via == ["slack"] and not payload.get("last", True)
            outbox.enqueue(
                session,
                page_lane,
                "page",
                now,
                {
                    "page_id": page.id,
                    "notification_id": notification.id,
                    "dnd_check": dnd,
                    **({"said": True} if payload.get("said") else {}),
                },
                incident_id=incident.id,
                priority=outbox.PAGE,
            )
        else:
            outbox.enqueue(
                session,
                f"notify:{page.id}:{method}",
                "notify",
                now,
                {"notification_id": notification.id, "retry_until": payload["retry_until"]},
                incident_id=incident.id,
                priority=outbox.PAGE,
            )
    return via


def pending_rules(session: Session, page_id: int) -> list[Timer]:
    """The page's rules still waiting for their time, earliest first."""
    key_prefix = f"p{page_id}r"
    timers = session.exec(
        select(Timer).where(
            col(Timer.kind) == KIND, col(Timer.status) == "pending", col(Timer.key).startswith(key_prefix)
        )
    )
    return sorted(timers, key=lambda t: int(t.key.removeprefix(key_prefix)))


def cancel(session: Session, incident: Incident, now: datetime) -> int:
    """Acknowledged or resolved: no notification of the incident that has not gone out yet goes
    out (their timers are cancelled with the escalation timers). A call already under way may
    still land; its outcome is recorded but moves nothing. Receipts still followed (Pushover's
    emergency pages) are cancelled at the provider, so phones stop ringing."""
    notify_receipts.cancel_pending(session, incident, now)
    session.exec(  # type: ignore[call-overload]
        update(Notification)
        .where(col(Notification.incident_id) == incident.id, col(Notification.status) == "pending")
        .values(status="cancelled", done_at=now)
    )
    result = session.exec(  # type: ignore[call-overload]
        update(Outbox)
        .where(
            col(Outbox.incident_id) == incident.id,
            col(Outbox.op) == "notify",
            col(Outbox.status) == "pending",
        )
        .values(status="superseded", done_at=now, last_error="acknowledged before it went out")
    )
    return int(result.rowcount or 0)
