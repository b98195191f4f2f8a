"""Use cases of paging: start paging an incident, fire a due step, escalate now, re-time, stop.
(Who a step pages, and how: bot/service/step_pages.py.)

One escalation timer is pending per incident at a time: firing a step pages its people and
schedules the next step, so acknowledging only has to cancel what is pending. The plan itself is
recomputed from the policy (pure core), the incident's anchor time and its severity.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.escalation import (
    PlannedStep,
    final_notice_due,
    final_notice_mention,
)
from bot.core.routing import Route
from bot.service.context import Context
from bot.service.escalation_plan import pending_step, plan_of, step_key
from bot.service.incidents import VIA_NAMES, cancel_paging, lane, say, sync
from bot.service.step_pages import page_step
from bot.service.timeline import record
from bot.store import outbox
from bot.store.tables import Incident, Timer

log = logging.getLogger(__name__)


def start(
    ctx: Context,
    session: Session,
    incident: Incident,
    labels: dict[str, str],
    now: datetime,
    *,
    fresh: bool = False,
) -> Route | None:
    """Route the incident, page the first step (in the open transaction); the route that matched.
    `fresh`: the incident was inserted in this transaction, so it has no timers to look up."""
    if ctx.rotations is None:
        return None
    matched = None
    if incident.rotation is None:
        rotation, matched = ctx.rotations.rotation_for(labels)
        incident.rotation = rotation.name
        if matched is not None and matched.severity:
            incident.severity = matched.severity
        why = f"route at line {matched.line}" if matched else "no route matched: first rotation"
        assert incident.id is not None
        record(session, incident.id, now, "bot", "routed", f"Routed to rotation {rotation.name} ({why})")
    incident.escalation_anchor = now
    session.add(incident)
    _advance(ctx, session, incident, now, fresh=fresh)
    return matched


def restart(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    """On reopen: page again from the first step, in a new cycle."""
    cancel_paging(session, incident, now)
    incident.paging_cycle += 1
    incident.escalation_anchor = now
    session.add(incident)
    _advance(ctx, session, incident, now)


def retime(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    """The severity changed: the pending step keeps its place in the plan but takes the new pace,
    counted from the page before it. One that is overdue at the new pace pages at the next tick,
    alone, not with the steps after it; those keep the new gaps."""
    pending = pending_step(session, incident)
    if pending is None or incident.status != "triggered":
        return
    plan = plan_of(ctx, incident)
    keys = [step_key(incident, step) for step in plan]
    if pending.kind == "final_notice":
        at = len(plan)
    elif pending.key in keys:
        at = keys.index(pending.key)
    else:
        return  # the policy changed under the timer: it fires as it is
    if at == 0:
        return  # nothing paged yet: the first step's delay does not depend on severity
    before = session.exec(
        select(Timer.fired_at).where(
            col(Timer.incident_id) == incident.id,
            col(Timer.kind) == "escalation",
            col(Timer.key) == keys[at - 1],
        )
    ).first()
    due = max(now, (before or plan[at - 1].due_at) + plan[at - 1].wait_after)
    if at < len(plan):
        anchor = incident.escalation_anchor or incident.created_at
        incident.escalation_anchor = anchor + (due - plan[at].due_at)
        session.add(incident)
    pending.due_at = due
    session.add(pending)


def _fired(session: Session, incident: Incident) -> set[str]:
    return set(
        session.exec(
            select(Timer.key).where(
                col(Timer.incident_id) == incident.id,
                col(Timer.kind) == "escalation",
                col(Timer.status) == "fired",
            )
        )
    )


def _advance(
    ctx: Context, session: Session, incident: Incident, now: datetime, *, fresh: bool = False
) -> None:
    """Page every step due by `now` that has not fired, then schedule the next one (or the final notice)."""
    session.flush()
    plan = plan_of(ctx, incident)
    fired = set() if fresh else _fired(session, incident)
    for step in plan:
        key = step_key(incident, step)
        if key in fired:
            continue
        if step.due_at > now:
            _schedule(session, incident, "escalation", key, step.due_at, fresh=fresh)
            return
        _fire(ctx, session, incident, step, now, manual=False)
    due = final_notice_due(plan)
    if due is not None:
        key = f"c{incident.paging_cycle}final"
        _schedule(session, incident, "final_notice", key, max(due, now), fresh=fresh)


def _fire(
    ctx: Context,
    session: Session,
    incident: Incident,
    step: PlannedStep,
    now: datetime,
    *,
    manual: bool,
    timer: Timer | None = None,
    why: str | None = None,
) -> list[str]:
    """Page one step and record it as fired (the timer row, or a new one for catch-up steps);
    the people it did not page again, each in a sentence (see `page_step`)."""
    if timer is None:
        timer = Timer(
            incident_id=incident.id, kind="escalation", key=step_key(incident, step), due_at=step.due_at
        )
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    skipped = page_step(
        ctx,
        session,
        incident,
        step,
        step_key(incident, step),
        now,
        manual=manual,
        late_by=None if manual else now - step.due_at,
        why=why,
    )
    if manual and step.due_at > now:
        # Escalating by hand pulls the rest of the plan forward, keeping its gaps.
        incident.escalation_anchor = (incident.escalation_anchor or incident.created_at) - (step.due_at - now)
        session.add(incident)
    return skipped


def _schedule(
    session: Session, incident: Incident, kind: str, key: str, due: datetime, *, fresh: bool = False
) -> None:
    if not fresh:  # a fresh incident has no timers yet
        mine = col(Timer.incident_id) == incident.id, col(Timer.kind) == kind, col(Timer.key) == key
        if session.exec(select(Timer.id).where(*mine)).first() is not None:
            return
    session.add(Timer(incident_id=incident.id, kind=kind, key=key, due_at=due))


def on_timer(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """A claimed due timer of kind escalation or final_notice."""
    incident = session.get(Incident, timer.incident_id)
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    if incident is None or incident.status != "triggered":
        return  # acknowledged or resolved meanwhile: nothing to do
    if timer.kind == "final_notice":
        _final_notice(ctx, session, incident, now)
        sync(ctx, session, incident, now)  # nothing is next any more
        return
    step = _step_of(ctx, incident, timer)
    if step is not None:
        _fire(ctx, session, incident, step, now, manual=False, timer=timer, why=timer.payload.get("early"))
    _advance(ctx, session, incident, now)
    sync(ctx, session, incident, now)  # the card shows who is paged now and the step after


def _step_of(ctx: Context, incident: Incident, timer: Timer) -> PlannedStep | None:
    return next((s for s in plan_of(ctx, incident) if step_key(incident, s) == timer.key), None)


def _final_notice(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    assert incident.id is not None
    plan = plan_of(ctx, incident)
    mention = final_notice_mention(plan)
    age = format_duration(now - incident.created_at)
    text = (
        f"<!{mention}> Nobody has acknowledged this incident after {age} and every escalation step has paged."
    )
    say(session, incident, now, text, trusted=True)
    if ctx.announce_channel:
        where = f"<#{incident.channel_id}>" if incident.channel_id else f"#{incident.channel_name}"
        outbox.enqueue(
            session,
            lane(incident),
            "say",
            now,
            {
                "text": f"<!{mention}> Unacknowledged incident for {age}: {where}",
                "trusted": True,
                "channel": "announce",
            },
            incident_id=incident.id,
        )
    record(
        session,
        incident.id,
        now,
        "bot",
        "final_notice",
        f"Final @{mention} notice: unacknowledged after {age}",
    )


def escalate_now(
    ctx: Context, session: Session, incident: Incident, actor: str, now: datetime, *, via: str = "slack"
) -> str:
    """Jump to the next step at once; returns what happened, for the person who asked. `via`:
    where it was asked (slack, sms, voice), for the timeline."""
    assert incident.id is not None
    pending = pending_step(session, incident)
    step = _step_of(ctx, incident, pending) if pending is not None and pending.kind == "escalation" else None
    if pending is None or step is None:
        return "Every escalation step has already paged; page someone with `/incident page @user`."
    how = "" if via == "slack" else f" (via {VIA_NAMES.get(via, via)})"
    record(session, incident.id, now, actor, "escalate", f"Escalated by hand to step {step.index + 1}{how}")
    skipped = _fire(ctx, session, incident, step, now, manual=True, timer=pending)
    _advance(ctx, session, incident, now)
    sync(ctx, session, incident, now)
    return " ".join([f"Escalated: paging step {step.index + 1} now.", *skipped])
