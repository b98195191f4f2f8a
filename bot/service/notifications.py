"""Use cases of personal notification rules: a rule's time comes, a notification went out or failed
for good, the person is in Do Not Disturb.

Called from the scheduler (a `notify` timer) and from outbox completions (in the transaction that
settles the delivery), so each outcome commits with what it implies. The decisions are the pure
ones of `bot.core.notify_rules`; the incident row is locked first, as people's use cases do, so an
acknowledgement racing a failure either wins (nothing moves) or waits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.notify_rules import FailureStep, RuleState, after_failure
from bot.core.text import escape
from bot.service import notify_plan, notify_receipts
from bot.service.context import Context
from bot.service.incidents import page_lane, say
from bot.service.page_failures import page_failed, who
from bot.service.timeline import record
from bot.store.tables import Incident, Notification, Page, Timer

log = logging.getLogger(__name__)

METHOD_NAMES = {"slack": "Slack DM", "sms": "SMS", "voice": "voice call"}


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def on_timer(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """A person's next rule is due: fire it while the incident still waits for an acknowledgement."""
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    incident = session.get(Incident, timer.incident_id)
    page = session.get(Page, int(timer.payload.get("page_id", 0)))
    if incident is None or page is None or incident.status != "triggered" or page.failed_at:
        return
    why = timer.payload.get("early") or f"not acknowledged {_after(page, now)} after the page"
    _fire(session, incident, page, timer.payload, now, why)


def _after(page: Page, now: datetime) -> str:
    return format_duration(now - page.paged_at)


def _fire(session: Session, incident: Incident, page: Page, payload: dict, now: datetime, why: str) -> None:
    assert incident.id is not None
    via = notify_plan.fire(session, incident, page, payload, now, page_lane(incident))
    names = ", ".join(method_name(m) for m in via)
    record(
        session,
        incident.id,
        now,
        "bot",
        "notify_rule",
        f"Trying {page.person} by {names} ({why})",
        {"person": page.person, "page": page.id, "rule": payload.get("rule"), "via": via},
    )


def bring_forward(
    session: Session, incident: Incident, page: Page, rule: int, why: str, now: datetime
) -> bool:
    """Fire the page's rule `rule` now if it is still waiting (its timer row is marked fired in this
    transaction: the scheduler can no longer fire it too). False when it is not waiting."""
    assert page.id is not None
    timer = session.exec(
        select(Timer)
        .where(
            col(Timer.kind) == notify_plan.KIND,
            col(Timer.key) == notify_plan.timer_key(page.id, rule),
            col(Timer.status) == "pending",
        )
        .with_for_update()
    ).first()
    if timer is None or incident.status != "triggered":
        return False
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    _fire(session, incident, page, timer.payload, now, why)
    return True


def _lock(session: Session, notification_id: int) -> tuple[Incident | None, Notification | None]:
    notification = session.get(Notification, notification_id)
    if notification is None or notification.incident_id is None:
        return None, notification
    incident = session.exec(
        select(Incident).where(col(Incident.id) == notification.incident_id).with_for_update()
    ).first()
    session.refresh(notification)
    return incident, notification


def sent(
    session: Session,
    notification_id: int,
    answer: str,
    now: datetime,
    *,
    receipt: str = "",
    follow: tuple[timedelta, timedelta, timedelta] | None = None,
) -> None:
    """The provider accepted it: record what it answered. `follow`: (first look after, for how
    long, at most this long between looks) its `receipt` tells whether the person acknowledged
    (Pushover's emergency priority)."""
    incident, n = _lock(session, notification_id)
    if n is None or n.status in ("sent", "failed"):
        return
    n.status, n.answer, n.done_at = "sent", answer, now
    session.add(n)
    if incident is not None and incident.id is not None and n.method != "slack":
        record(
            session,
            incident.id,
            now,
            "bot",
            "notified",
            f"Notified {n.person} by {method_name(n.method)}: {answer}",
            {"person": n.person, "method": n.method, "rule": n.rule, "answer": answer, "page": n.page_id},
        )
        if follow is not None and receipt:
            notify_receipts.follow(session, incident, n, receipt, *follow, now)


def failed(ctx: Context, session: Session, notification_id: int, error: str, now: datetime) -> None:
    """A method failed for good: record and say it, then the person's next rule at once; if nothing
    is left to try, the page has failed (the escalation step may come forward)."""
    incident, n = _lock(session, notification_id)
    if n is None or incident is None or incident.id is None or n.status in ("sent", "failed"):
        return
    page = session.get(Page, n.page_id)
    if page is None:
        return
    n.status, n.answer, n.done_at = "failed", error, now
    session.add(n)
    session.flush()
    decision = after_failure(n.rule, _rule_states(session, page))
    if decision.unreachable:
        # Every way to reach them failed: the page failed, as a Slack-only page always did.
        page_failed(
            ctx,
            session,
            incident.id,
            page.id or 0,
            error,
            now,
            user=page.slack_user,
            reason=_reason(n, error),
        )
        return
    nxt = ""
    if decision.step is FailureStep.NEXT_RULE and decision.bring_forward is not None:
        why = f"{method_name(n.method)} failed"
        if bring_forward(session, incident, page, decision.bring_forward, why, now):
            nxt = _next_methods(session, page, decision.bring_forward)
    record(
        session,
        incident.id,
        now,
        "bot",
        "notify_failed",
        f"Could not reach {page.person} by {method_name(n.method)}: {error}"
        + (f"; trying {nxt} now" if nxt else ""),
        {"person": page.person, "method": n.method, "rule": n.rule, "error": error, "next": nxt or None},
    )
    text = f":warning: Could not reach {who(ctx, page)} by {method_name(n.method)}: {escape(error)}"
    say(session, incident, now, text + (f"; trying {escape(nxt)} now." if nxt else "."), trusted=True)
    log.warning("notification %s (%s) of incident %s failed: %s", n.id, n.method, incident.id, error)


def _reason(n: Notification, error: str) -> str | None:
    """None for Slack: page_failed words Slack's own errors (and a missing Slack user) itself."""
    return None if n.method == "slack" else f"{method_name(n.method)}: {error}"


def _next_methods(session: Session, page: Page, rule: int) -> str:
    methods = session.exec(
        select(Notification.method).where(
            col(Notification.page_id) == page.id, col(Notification.rule) == rule
        )
    )
    return ", ".join(method_name(m) for m in methods)


def _rule_states(session: Session, page: Page) -> list[RuleState]:
    """Every rule of the page: the fired ones from their notifications, the waiting ones from timers."""
    by_rule: dict[int, list[str]] = {}
    for rule, status in session.exec(
        select(Notification.rule, Notification.status).where(col(Notification.page_id) == page.id)
    ):
        by_rule.setdefault(rule, []).append(status)
    states = [RuleState(rule, True, tuple(statuses)) for rule, statuses in by_rule.items()]  # type: ignore[arg-type]
    assert page.id is not None
    for timer in notify_plan.pending_rules(session, page.id):
        states.append(RuleState(int(timer.payload.get("rule", 0)), False))
    return states


def in_dnd(ctx: Context, session: Session, notification_id: int, now: datetime) -> None:
    """Slack says the person's notifications are paused: the DM went out (it will be there when
    they look), but it does not count as reaching them: their next rule fires now."""
    incident, n = _lock(session, notification_id)
    if n is None or incident is None or incident.id is None:
        return
    page = session.get(Page, n.page_id)
    if page is None or page.id is None:
        return
    pending = notify_plan.pending_rules(session, page.id)
    rule = int(pending[0].payload.get("rule", 0)) if pending else None
    moved = rule is not None and bring_forward(
        session, incident, page, rule, f"{page.person} is in Slack's Do Not Disturb", now
    )
    nxt = _next_methods(session, page, rule) if moved and rule is not None else ""
    tail = f"trying {nxt}" if nxt else "no other way to reach them now"
    record(
        session,
        incident.id,
        now,
        "bot",
        "dnd",
        f"@{page.person} is in Do Not Disturb: {tail}",
        {"person": page.person, "user": page.slack_user, "next": nxt or None},
    )
    say(session, incident, now, f":zzz: {who(ctx, page)} is in Do Not Disturb: {escape(tail)}.", trusted=True)
