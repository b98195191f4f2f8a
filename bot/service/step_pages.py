"""Page the people of one escalation step: a Page row and a DM per person, PagerDuty triggers, and
a timeline line that says who, why and (after downtime) how late."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.core.durations import format_duration
from bot.core.escalation import PlannedStep, pagerduty_keys, resolve_targets
from bot.core.notify_rules import rules_for
from bot.core.rotations import Person, on_call_all
from bot.core.text import escape
from bot.service import pagerduty_sync
from bot.service.context import Context
from bot.service.incidents import say, send_page
from bot.service.oncall_schedule import effective_rotation
from bot.service.people import not_again, unanswered
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
) -> list[str]:
    """`why`: the reason to give for firing (default: by hand, first page or not acknowledged).
    Escalating by hand does not page again someone paged for this incident who has not answered
    yet: returns a sentence for each person it skipped."""
    assert ctx.rotations is not None and incident.rotation is not None and incident.id is not None
    # The schedule as it stands now, overrides from Slack included: one made since the incident
    # opened changes who this step pages (pages already sent stay).
    rotation = effective_rotation(ctx, session, incident.rotation, now)
    people = resolve_targets(step, rotation, ctx.rotations.people, now)
    skipped: list[tuple[Person, str]] = []
    if manual:
        waiting = unanswered(ctx, session, incident)
        earlier = {p.name: waiting.of_person(p) for p in people}
        skipped = [(p, not_again(escape(_name(p)), page, now)) for p in people if (page := earlier[p.name])]
        people = [p for p in people if earlier[p.name] is None]
    shifts = on_call_all(rotation, now) if rotation.source == "file" else {}
    layer_of: dict[str, str] = {}  # each person by the layer this step pages them for
    for target in step.step.targets:
        if target.kind == "layer" and target.value in shifts:
            layer_of.setdefault(shifts[target.value].person, target.value)
    label = f"step {step.index + 1}" + (f", round {step.round + 1}" if step.round else "")
    late = late_by is not None and late_by > LATE_AFTER
    # A step that speaks in the channel says who it pages in that one line; their pages do not
    # each add a "Paged @x" line under it.
    said = bool(step.step.channel_mention) or late
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
        send_page(session, incident, page, now, rules, person, said=said)
    # PagerDuty: routing keys get an Events API trigger; a step of a PagerDuty-sourced rotation that
    # triggers none pages whoever PagerDuty has on call at level <step number> (looked up at delivery).
    routing_keys = pagerduty_keys(step)
    also = [f"PagerDuty (routing key …{k[-4:]})" for k in routing_keys]
    if routing_keys:
        pagerduty_sync.trigger(session, incident, routing_keys, key, now)
    if rotation.source == "pagerduty" and rotation.pagerduty is not None and not routing_keys:
        pagerduty_sync.page_level(session, incident, rotation, step.index + 1, key, now)
        also.append(f"PagerDuty's on-call at level {step.index + 1}")
    why = why or (
        "escalated by hand"
        if manual
        else ("first page" if step.index == 0 and step.round == 0 else "not acknowledged")
    )

    def line(names: list[str], text_of: Callable[[str], str]) -> str:
        """The step's line: `names` already in form, the rest of the words through `text_of`."""
        fallback = "nobody new" if skipped else "nobody (no targets)"
        who = ", ".join(names + [text_of(a) for a in also]) or fallback
        text = f"Paging {who} ({text_of(label)}: {text_of(why)})"
        if skipped:
            again = ", ".join(text_of(_name(p)) for p, _ in skipped)
            text += f"; not paging {again} again: already paged and not acknowledged"
        if late_by is not None and late:  # say so: responders must know why
            text += f", {format_duration(late_by)} late: the bot was not running when it was due"
        return text

    text = line([_name(p) for p in people], str)
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
    if said:  # in Slack: a mention for each person with a Slack ID, everything else escaped
        names = [f"<@{p.slack_id}>" if p.slack_id else escape(_name(p)) for p in people]
        mark = f"<!{step.step.channel_mention}>" if step.step.channel_mention else ":hourglass:"
        say(session, incident, now, f"{mark} {line(names, escape)}", trusted=True)
    return [sentence for _, sentence in skipped]


def _name(person: Person) -> str:
    return person.display_name or person.name
