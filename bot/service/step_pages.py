"""Page the people of one escalation step: a Page row and a DM per person, PagerDuty triggers, and
a timeline line that says who, why and (after downtime) how late."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from bot.core.durations import format_duration
from bot.core.escalation import PlannedStep, pagerduty_keys, resolve_targets
from bot.core.notify_rules import rules_for
from bot.core.rotations import on_call_all
from bot.core.text import escape
from bot.service import pagerduty_sync
from bot.service.context import Context
from bot.service.incidents import say, send_page
from bot.service.timeline import record
from bot.store.tables import Incident, Page

LATE_AFTER = timedelta(seconds=5)  # a step fired later than this says so (a tick is 1 s)


def page_step(
    ctx: Context,
    session: Session,
    incident: Incident,
    step: PlannedStep,
    key: str,
    now: datetime,
    *,
    manual: bool,
    late_by: timedelta | None,
    why: str | None = None,
) -> None:
    """`why`: the reason to give for firing (default: by hand, first page or not acknowledged)."""
    assert ctx.rotations is not None and incident.rotation is not None and incident.id is not None
    rotation = ctx.rotations.rotations[incident.rotation]
    people = resolve_targets(step, rotation, ctx.rotations.people, now)
    shifts = on_call_all(rotation, now) if rotation.source == "file" else {}
    layer_of: dict[str, str] = {}  # each person by the layer this step pages them for
    for target in step.step.targets:
        if target.kind == "layer" and target.value in shifts:
            layer_of.setdefault(shifts[target.value].person, target.value)
    label = f"step {step.index + 1}" + (f", round {step.round + 1}" if step.round else "")
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
        rules = rules_for(person, ctx.rotations.default_notify, incident.severity)
        send_page(session, incident, page, now, rules, person)
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
    why = why or (
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
