"""Post-mortems: the facts of one incident, built from plain records (one per store row).

`build_facts` turns the records into `PostmortemFacts` (defined with the other types a template
sees in `bot.core.postmortem_render`, whose docstring lists them): every time as a `Moment` in UTC
and in the rotation's zone, durations, pages, escalations, runbook steps done, notes, action items
and the whole timeline. `render_postmortem` is re-exported from there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.errors import BadInput
from bot.core.markdown import is_web_url
from bot.core.people import People
from bot.core.postmortem_records import AlertRecord, IncidentRecord, PageRecord, TimelineRecord
from bot.core.postmortem_render import (
    DASH,
    TEMPLATE_VARIABLES,
    ActionItem,
    AlertFact,
    EscalationFact,
    Link,
    Moment,
    Note,
    PageFact,
    Participant,
    PostmortemFacts,
    RunbookStepFact,
    StatusChange,
    TimelineFact,
    render_postmortem,
)
from bot.core.text import slack_to_markdown

__all__ = [
    "DASH",
    "TEMPLATE_VARIABLES",
    "ActionItem",
    "AlertFact",
    "AlertRecord",
    "EscalationFact",
    "IncidentRecord",
    "Link",
    "Moment",
    "Note",
    "PageFact",
    "PageRecord",
    "Participant",
    "PostmortemFacts",
    "RunbookStepFact",
    "StatusChange",
    "TimelineFact",
    "TimelineRecord",
    "build_facts",
    "render_postmortem",
    "step_label",
    "step_position",
]


_STEP_KEY = re.compile(r"c(\d+)r(\d+)s(\d+)")


def step_position(key: str) -> tuple[int, int, int] | None:
    """(cycle, round, step), 0-based, of an escalation step key like 'c0r1s2'; None if not one."""
    m = _STEP_KEY.fullmatch(key)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def step_label(key: str) -> str:
    pos = step_position(key)
    if pos is None:
        return key
    return f"step {pos[2] + 1}" + (f", round {pos[1] + 1}" if pos[1] else "")


def build_facts(
    incident: IncidentRecord,
    alerts: Sequence[AlertRecord],
    timeline: Sequence[TimelineRecord],
    pages: Sequence[PageRecord],
    timezone: str,
    runbook_title: str | None,
    people: People | None = None,
) -> PostmortemFacts:
    """`people`: people.yaml, so people are named by their display names (and their pages also in
    their own time zone); without it, by the names their pages carry."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise BadInput(f"unknown time zone {timezone!r}") from e

    def moment(at: datetime) -> Moment:
        at = _aware(at)
        local = at.astimezone(zone)
        return Moment(
            at, local, f"{at:%Y-%m-%d %H:%M:%S} UTC", f"{local:%Y-%m-%d %H:%M:%S %Z}", f"{at:%Y-%m-%d}"
        )

    def opt(at: datetime | None) -> Moment | None:
        return None if at is None else moment(at)

    # Slack users we can name: people.yaml, and paged people carry their Slack id.
    directory = (people or People()).learn((p.slack_user, p.person) for p in pages)

    def who(actor: str | None) -> str | None:
        return directory.name(actor) if actor else None

    def plain(text: str, actor: str | None = "bot") -> str:
        """Slack markup (typed in Slack, or the bot's own mentions) as Markdown; text from anywhere
        else (alerts, PagerDuty) is not Slack markup and stays text for the template to escape."""
        if actor != "bot" and not (actor or "").startswith("slack:"):
            return text
        return slack_to_markdown(text, lambda user: "@" + directory.name(f"slack:{user}").lstrip("@"))

    def their_time(page: PageRecord) -> str | None:
        zone = directory.zone(page.person) or directory.zone(page.slack_user)
        return f"{_aware(page.paged_at).astimezone(ZoneInfo(zone)):%H:%M %Z}" if zone else None

    entries = sorted(timeline, key=lambda e: _aware(e.at))  # stable: equal times keep row order
    sorted_alerts = sorted(alerts, key=lambda a: (_aware(a.starts_at), a.name))
    declared = moment(incident.created_at)
    detected = moment(sorted_alerts[0].starts_at) if sorted_alerts else None
    start = detected if detected is not None and detected.at < declared.at else declared
    acknowledged = opt(incident.first_acknowledged_at or incident.acknowledged_at)
    resolved = opt(incident.resolved_at)

    def since(a: Moment | None, b: Moment | None) -> timedelta | None:
        return None if a is None or b is None else b.at - a.at

    done: dict[tuple[str, int], RunbookStepFact | None] = {}
    for e in entries:
        if e.kind == "runbook_step" and "number" in e.data:
            key = (str(e.data.get("slug", "")), int(e.data["number"]))
            by = e.data.get("by")
            if e.data.get("done"):
                text = e.text.split(": ", 1)[1] if ": " in e.text else ""
                done[key] = RunbookStepFact(
                    key[0], key[1], text, who(f"slack:{by}" if by else e.actor) or "", moment(e.at)
                )
            else:
                done[key] = None  # undone later: the last state wins

    return PostmortemFacts(
        incident_id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        source=incident.source,
        channel=incident.channel_name,
        external_url=incident.external_url if is_web_url(incident.external_url) else "",
        rotation=incident.rotation,
        timezone=timezone,
        detected=detected,
        declared=declared,
        acknowledged=acknowledged,
        resolved=resolved,
        closed=opt(incident.closed_at),
        start=start,
        duration=since(start, resolved),
        tta=since(declared, acknowledged),
        ttr=since(declared, resolved),
        tta_detected=since(detected, acknowledged),
        ttr_detected=since(detected, resolved),
        status_history=tuple(
            StatusChange(
                moment(e.at),
                str(e.data.get("from", "")),
                str(e.data.get("to", "")),
                str(e.data.get("event", "")),
                e.actor,
                who(e.actor) or "",
            )
            for e in entries
            if e.kind == "status"
        ),
        pages=tuple(
            PageFact(
                who(p.person) or p.person,
                p.layer,
                p.step_key,
                step_label(p.step_key),
                p.slack_user,
                moment(p.paged_at),
                directory.key(p.person) or p.person,
                their_time(p),
            )
            for p in sorted(pages, key=lambda p: _aware(p.paged_at))
        )
        + _paged_by_pagerduty(entries, moment),
        acknowledged_by=who(incident.acknowledged_by),
        resolved_by=who(incident.resolved_by),
        lead=who(incident.lead),
        participants=_participants(incident, entries, pages, directory),
        alerts=tuple(_alert(a, moment, opt) for a in sorted_alerts),
        runbook_title=runbook_title,
        runbook_steps=tuple(step for _, step in sorted(done.items()) if step is not None),
        escalations=tuple(
            EscalationFact(
                moment(e.at),
                str(e.data.get("step", "")),
                step_label(str(e.data.get("step", ""))),
                tuple(who(str(p)) or str(p) for p in e.data.get("people", ())),
                timedelta(seconds=float(e.data.get("late_seconds") or 0)),
                plain(e.text),
            )
            for e in entries
            if e.kind == "escalation"
        ),
        notes=tuple(
            Note(moment(e.at), who(e.actor) or "", plain(e.text, e.actor))
            for e in entries
            if e.kind == "note"
        ),
        action_items=tuple(
            ActionItem(moment(e.at), who(e.actor) or "", plain(str(e.data.get("text") or e.text), e.actor))
            for e in entries
            if e.kind == "action"
        ),
        timeline=tuple(
            TimelineFact(moment(e.at), e.actor, who(e.actor) or "", e.kind, plain(e.text, e.actor))
            for e in entries
            if e.kind not in BOT_ECHOES
        ),
    )


# Timeline entries of a PagerDuty incident that say whom PagerDuty assigned (and so paged).
PAGERDUTY_ASSIGNMENTS = frozenset({"pagerduty", "pagerduty_escalated", "pagerduty_reassigned"})


def _paged_by_pagerduty(entries: Sequence[TimelineRecord], moment: Any) -> tuple[PageFact, ...]:
    """PagerDuty pages its assignees, not the bot: each assignment in the timeline is a page
    (step "pagerduty"), so "who was paged" holds them like the bot's own pages."""
    return tuple(
        PageFact(str(name), None, "pagerduty", "by PagerDuty", None, moment(e.at))
        for e in entries
        if e.kind in PAGERDUTY_ASSIGNMENTS
        for name in e.data.get("assignees", ())
    )


# The bot's own Slack posts repeat entries already in the timeline (and carry Slack markup).
BOT_ECHOES = frozenset({"posted", "announced"})


def _aware(at: datetime) -> datetime:
    # The store hands back aware UTC; a naive value can only mean UTC here.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _participants(
    incident: IncidentRecord, entries: Sequence[TimelineRecord], pages: Sequence[PageRecord], people: People
) -> tuple[Participant, ...]:
    """People only (paged people and Slack actors), once each, in order of first appearance."""
    found: dict[str, Participant] = {}
    for p in sorted(pages, key=lambda p: _aware(p.paged_at)):
        key = people.key(p.person) or p.slack_user or f"person:{p.person}"
        found.setdefault(key, Participant(people.name(p.person), p.slack_user, True))
    actors = [e.actor for e in entries] + [incident.acknowledged_by, incident.resolved_by, incident.lead]
    for actor in actors:
        if actor and actor.startswith("slack:"):
            user = actor.removeprefix("slack:")
            found.setdefault(people.key(actor) or user, Participant(people.name(actor), user, False))
    return tuple(found.values())


def _alert(a: AlertRecord, moment: Any, opt: Any) -> AlertFact:
    # Only web links: a `javascript:` generatorURL is an alert's text, not a link to follow.
    links = [Link("source", a.generator_url)] if _is_url(a.generator_url) else []
    links += [Link(k, v) for k, v in sorted(a.annotations.items()) if _is_url(v)]
    return AlertFact(
        a.name,
        a.status,
        dict(a.labels),
        dict(a.annotations),
        moment(a.starts_at),
        opt(a.ends_at),
        tuple(links),
    )


def _is_url(value: str) -> bool:
    return (
        value.startswith(("http://", "https://"))
        and is_web_url(value)
        and not any(c.isspace() for c in value)
    )
