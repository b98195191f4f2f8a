"""Use case: a page Slack refused for good (the DM could not be opened or posted, or the person has
no Slack account). People are told where they look, the timeline and `/incident status` show it,
and when nobody on the step can be paged any more the next step is brought forward to now.

Called from the `page` outbox operation's completion, so it commits with the settled outbox row.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.escalation import EarlyEscalation, PageOutcome, early_escalation
from bot.core.postmortem import step_label
from bot.core.text import escape
from bot.service import escalation_plan
from bot.service.context import Context
from bot.service.incidents import refresh_card, say
from bot.service.people import people_of
from bot.service.timeline import record
from bot.store import outbox
from bot.store.tables import Incident, Notification, Page

log = logging.getLogger(__name__)

NO_SLACK_USER = "users_not_found"  # what users.lookupByEmail answers for an unknown address
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def page_failed(
    ctx: Context,
    session: Session,
    incident_id: int,
    page_id: int,
    error: str,
    now: datetime,
    *,
    user: str | None = None,
    reason: str | None = None,
) -> None:
    """Record that page `page_id` cannot be delivered (`error`: Slack's error code, or the last
    provider's answer when every notification rule failed, with `reason` the sentence), say so, and
    escalate early if that leaves the step with nobody to reach. A page already settled (posted,
    or failed before) is left alone, so a completion applied twice changes nothing."""
    # The incident first, as people's use cases do: an acknowledgement or a timer tick on the same
    # incident waits (or skips it) instead of racing the early escalation.
    incident = session.exec(select(Incident).where(col(Incident.id) == incident_id).with_for_update()).first()
    page = session.get(Page, page_id)
    if incident is None or incident.id is None or page is None or page.dm_ts or page.failed_at:
        return
    page.failed_at, page.failure = now, error
    page.slack_user = page.slack_user or user
    session.add(page)
    session.flush()
    label = "paged by hand" if page.step_key == "manual" else step_label(page.step_key)
    where = f"{page.layer}, {label}" if page.layer else label
    early = bring_forward(ctx, session, incident, page.step_key, _outcomes(session, page), now)
    reason = reason or _reason(page, error)
    record(
        session,
        incident.id,
        now,
        "bot",
        "page_failed",
        f"Could not page {people_of(ctx).name(page.person)} ({where}): {reason}"
        + (f"; {early}" if early else ""),
        {"person": page.person, "user": page.slack_user, "error": error, "step": page.step_key},
    )
    hint = " Add `slack:` to rotations/people.yaml." if error == NO_SLACK_USER else ""
    text = f":warning: Could not page {who(ctx, page)} ({escape(where)}): {escape(reason)}.{hint}"
    _tell(ctx, session, incident, now, text + (f" {escape(early)}." if early else ""))
    refresh_card(session, incident, now)  # the card shows the page as failed
    log.error(
        "page %s of incident %s failed for good: %s",
        page.id,
        incident.id,
        error,
        extra={"incident": incident.id},
    )


def bring_forward(
    ctx: Context,
    session: Session,
    incident: Incident,
    key: str,
    outcomes: list[PageOutcome],
    now: datetime,
) -> str | None:
    """A page of step `key` failed for good. If the core rule says nobody on that step can be paged
    any more, make the pending timer (the next step, or the final notice after the last step) due
    now: the scheduler's next tick fires it, exactly once, like any due timer. The rest of the plan
    moves up with it, keeping its gaps. Returns the sentence that says so, or None."""
    pending = escalation_plan.pending_step(session, incident)
    plan = escalation_plan.plan_of(ctx, incident)
    keys = [escalation_plan.step_key(incident, s) for s in plan]
    step = plan[keys.index(key)] if key in keys else None
    waiting = (
        incident.status == "triggered"
        and pending is not None
        and step is not None
        and (
            (pending.kind == "final_notice" and step is plan[-1])
            or (pending.key in keys and keys.index(pending.key) == keys.index(key) + 1)
        )
    )
    if early_escalation(step, outcomes, waiting=waiting) is not EarlyEscalation.NOBODY_REACHABLE:
        return None
    assert pending is not None
    failed = step_label(key)
    if pending.kind == "final_notice":
        text = f"Nobody on {failed} could be paged, and {failed} was the last step: final notice now"
    else:
        text = f"Nobody on {failed} could be paged, so {step_label(pending.key)} is paged now"
        if pending.due_at > now:
            text += f" instead of in {format_duration(pending.due_at - now)}"
            anchor = incident.escalation_anchor or incident.created_at
            incident.escalation_anchor = anchor - (pending.due_at - now)
            session.add(incident)
            # on_timer gives this as the reason for firing the step (not "not acknowledged").
            pending.payload = {**pending.payload, "early": f"nobody on {failed} could be paged"}
    pending.due_at = min(pending.due_at, now)
    session.add(pending)
    return text


def _outcomes(session: Session, failed: Page) -> list[PageOutcome]:
    """How every page of the failed page's step stands (the failed one included): delivered once
    any of its notifications went out (the DM, or another method of the person's rules)."""
    pages = list(
        session.exec(
            select(Page).where(
                col(Page.incident_id) == failed.incident_id, col(Page.step_key) == failed.step_key
            )
        )
    )
    reached = set(
        session.exec(
            select(Notification.page_id).where(
                col(Notification.page_id).in_([p.id for p in pages]), col(Notification.status) == "sent"
            )
        )
    )
    return [
        "failed" if p.failed_at else "delivered" if p.dm_ts or p.id in reached else "under_way" for p in pages
    ]


def _reason(page: Page, error: str) -> str:
    if error == NO_SLACK_USER:
        return f"no Slack user for {page.email or 'them'}"
    return f"Slack answered {error}"


def who(ctx: Context, page: Page) -> str:
    """A mention when the Slack ID is known (a deactivated account still shows its name), else the
    person's display name from people.yaml, else their key (escaped: it may come from PagerDuty)."""
    if page.slack_user and _USER_ID.fullmatch(page.slack_user):
        return f"<@{page.slack_user}>"
    person = ctx.rotations.people.get(page.person) if ctx.rotations else None
    return escape(person.display_name if person and person.display_name else page.person)


def _tell(ctx: Context, session: Session, incident: Incident, now: datetime, text: str) -> None:
    """In the incident channel; before it exists, in the announce channel at once (its own lane,
    so it waits neither for the channel nor behind the DMs still to send)."""
    if incident.channel_id or not ctx.announce_channel:
        say(session, incident, now, text, trusted=True)
        return
    outbox.enqueue(
        session,
        f"page-failures:{incident.id}",
        "say",
        now,
        {
            "text": f"Incident #{incident.id} (#{escape(incident.channel_name)}): {text}",
            "trusted": True,
            "channel": "announce",
        },
        incident_id=incident.id,
        priority=outbox.PAGE,
    )
