"""Use cases of paging: start paging an incident, fire a due step, escalate now, stop.

One escalation timer is pending per incident at a time: firing a step pages its people and
schedules the next step, so acknowledging only has to cancel what is pending. The plan itself is
recomputed from the policy (pure core), the incident's anchor time and its severity.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.escalation import PlannedStep, final_notice_due, pagerduty_keys, resolve_targets, schedule
from bot.core.rotations import on_call_all
from bot.core.routing import Route
from bot.core.text import escape
from bot.service import pagerduty_sync
from bot.service.context import Context
from bot.service.incidents import cancel_paging, lane, page_lane, say
from bot.service.timeline import record
from bot.store import outbox
from bot.store.tables import Incident, Page, Timer

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(seconds=5)  # a step fired later than this says so (a tick is 1 s)


def _plan(ctx: Context, incident: Incident) -> list[PlannedStep]:
    if ctx.rotations is None or incident.rotation not in ctx.rotations.policies:
        return []
    anchor = incident.escalation_anchor or incident.created_at
    return schedule(ctx.rotations.policies[incident.rotation], anchor, incident.severity)


def _key(incident: Incident, step: PlannedStep) -> str:
    return f"c{incident.paging_cycle}r{step.round}s{step.index}"


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
    plan = _plan(ctx, incident)
    keys = [_key(incident, step) for step in plan]
    at = (
        len(keys) if pending.kind == "final_notice" else keys.index(pending.key) if pending.key in keys else 0
    )
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


def pending_step(session: Session, incident: Incident) -> Timer | None:
    return session.exec(
        select(Timer).where(
            col(Timer.incident_id) == incident.id,
            col(Timer.status) == "pending",
            col(Timer.kind).in_(("escalation", "final_notice")),
        )
    ).first()


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
    plan = _plan(ctx, incident)
    fired = set() if fresh else _fired(session, incident)
    for step in plan:
        key = _key(incident, step)
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
) -> None:
    """Page one step and record it as fired (the timer row, or a new one for catch-up steps)."""
    if timer is None:
        timer = Timer(
            incident_id=incident.id, kind="escalation", key=_key(incident, step), due_at=step.due_at
        )
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    _page_step(
        ctx, session, incident, step, now, manual=manual, late_by=None if manual else now - step.due_at
    )
    if manual and step.due_at > now:
        # Escalating by hand pulls the rest of the plan forward, keeping its gaps.
        incident.escalation_anchor = (incident.escalation_anchor or incident.created_at) - (step.due_at - now)
        session.add(incident)


def _schedule(
    session: Session, incident: Incident, kind: str, key: str, due: datetime, *, fresh: bool = False
) -> None:
    if not fresh:  # a fresh incident has no timers yet
        mine = col(Timer.incident_id) == incident.id, col(Timer.kind) == kind, col(Timer.key) == key
        if session.exec(select(Timer.id).where(*mine)).first() is not None:
            return
    session.add(Timer(incident_id=incident.id, kind=kind, key=key, due_at=due))


def _page_step(
    ctx: Context,
    session: Session,
    incident: Incident,
    step: PlannedStep,
    now: datetime,
    *,
    manual: bool,
    late_by: timedelta | None,
) -> None:
    assert ctx.rotations is not None and incident.rotation is not None and incident.id is not None
    rotation = ctx.rotations.rotations[incident.rotation]
    people = resolve_targets(step, rotation, ctx.rotations.people, now)
    shifts = on_call_all(rotation, now) if rotation.source == "file" else {}
    layer_of: dict[str, str] = {}  # each person by the layer this step pages them for
    for target in step.step.targets:
        if target.kind == "layer" and target.value in shifts:
            layer_of.setdefault(shifts[target.value].person, target.value)
    label = f"step {step.index + 1}" + (f", round {step.round + 1}" if step.round else "")
    key = _key(incident, step)
    for person in people:
        page = Page(
            incident_id=incident.id,
            person=person.name,
            layer=layer_of.get(person.name),
            step_key=key,
            email=person.email,
            slack_user=person.slack_id,
            paged_at=now,
        )
        session.add(page)
        session.flush()
        outbox.enqueue(
            session,
            page_lane(incident),
            "page",
            now,
            {"page_id": page.id},
            incident_id=incident.id,
            priority=outbox.PAGE,
        )
    # PagerDuty: routing keys get an Events API trigger; a step of a PagerDuty-sourced rotation that
    # triggers none pages whoever PagerDuty has on call at level <step number> (looked up at delivery).
    routing_keys = pagerduty_keys(step)
    also = [f"PagerDuty (routing key …{k[-4:]})" for k in routing_keys]
    if routing_keys:
        pagerduty_sync.trigger(session, incident, routing_keys, key, now)
    if rotation.source == "pagerduty" and rotation.pagerduty is not None and not routing_keys:
        pagerduty_sync.page_level(session, incident, rotation, step.index + 1, key, now)
        also.append(f"PagerDuty's on-call at level {step.index + 1}")
    names = ", ".join([p.name for p in people] + also) or "nobody (no targets)"
    why = (
        "escalated by hand"
        if manual
        else ("first page" if step.index == 0 and step.round == 0 else "not acknowledged")
    )
    text = f"Paging {names} ({label}: {why})"
    if late_by is not None and late_by > LATE_AFTER:  # say so: responders must know why
        text += f", {format_duration(late_by)} late: the bot was not running when it was due"
    record(
        session,
        incident.id,
        now,
        "bot",
        "escalation",
        text,
        {
            "step": key,
            "people": [p.name for p in people],
            "late_seconds": late_by.total_seconds() if late_by else 0,
        },
    )
    late = late_by is not None and late_by > LATE_AFTER
    if step.step.channel_mention:
        say(session, incident, now, f"<!{step.step.channel_mention}> {escape(text)}", trusted=True)
    elif late:
        say(session, incident, now, f":hourglass: {text}")


def on_timer(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """A claimed due timer of kind escalation or final_notice."""
    incident = session.get(Incident, timer.incident_id)
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    if incident is None or incident.status != "triggered":
        return  # acknowledged or resolved meanwhile: nothing to do
    if timer.kind == "final_notice":
        _final_notice(ctx, session, incident, now)
        return
    step = _step_of(ctx, incident, timer)
    if step is not None:
        _fire(ctx, session, incident, step, now, manual=False, timer=timer)
    _advance(ctx, session, incident, now)


def _step_of(ctx: Context, incident: Incident, timer: Timer) -> PlannedStep | None:
    return next((s for s in _plan(ctx, incident) if _key(incident, s) == timer.key), None)


def _final_notice(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    assert incident.id is not None
    plan = _plan(ctx, incident)
    mention = next((s.step.channel_mention for s in reversed(plan) if s.step.channel_mention), None) or "here"
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


def escalate_now(ctx: Context, session: Session, incident: Incident, actor: str, now: datetime) -> str:
    """Jump to the next step at once; returns what happened, for the person who asked."""
    assert incident.id is not None
    pending = pending_step(session, incident)
    step = _step_of(ctx, incident, pending) if pending is not None and pending.kind == "escalation" else None
    if pending is None or step is None:
        return "Every escalation step has already paged; page someone with `/incident page @user`."
    record(session, incident.id, now, actor, "escalate", f"Escalated by hand to step {step.index + 1}")
    _fire(ctx, session, incident, step, now, manual=True, timer=pending)
    _advance(ctx, session, incident, now)
    return f"Escalated: paging step {step.index + 1} now."
