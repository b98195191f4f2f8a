"""The incident that mirrors a PagerDuty incident (see `bot.service.pagerduty`): opened with a
channel, a card and a runbook like any other, but paged by PagerDuty's escalation, not ours."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core.pagerduty import PagerDutyEvent
from bot.core.text import escape, link
from bot.service import pagerduty_details
from bot.service.context import Context
from bot.service.incidents import open_incident, say
from bot.service.timeline import record
from bot.store.tables import Alert, Incident

SOURCE = "pagerduty"


def actor_of(event: PagerDutyEvent) -> str:
    return f"{SOURCE}:{event.agent or 'PagerDuty'}"


def open_mirror(ctx: Context, session: Session, event: PagerDutyEvent, now: datetime) -> Incident:
    """Open the incident that mirrors a PagerDuty incident: channel, card and runbook, no paging."""
    from bot.service import runbooks  # runbooks -> responders -> pagerduty -> here: import when used

    actor = actor_of(event)
    incident = open_incident(
        ctx,
        session,
        source=SOURCE,
        title=event.title or f"PagerDuty incident {event.incident_id}",
        severity=event.severity,
        slug_source=event.title or event.incident_id,
        now=now,
        actor=actor,
        open_key=f"{SOURCE}|{event.incident_id}",
        external_url=event.html_url or "",
    )
    incident.external_id = event.incident_id
    pagerduty_details.remember(incident, event)  # assignees and conference bridge, for the card
    session.add(incident)
    assert incident.id is not None
    # One alert row stands for the PagerDuty incident: the card shows it, and its name (the PagerDuty
    # service) links a runbook the way an alertname does (`runbooks/<service-slug>.md` or front matter).
    session.add(
        Alert(
            incident_id=incident.id,
            fingerprint=f"{SOURCE}:{event.incident_id}",
            name=event.service_name or "PagerDuty",
            status="firing",
            labels={
                "alertname": event.service_name or "PagerDuty",
                **({"pagerduty_incident": f"#{event.incident_number}"} if event.incident_number else {}),
                **({"urgency": event.urgency} if event.urgency else {}),
            },
            annotations={"summary": event.title},
            starts_at=event.occurred_at,
            generator_url=event.html_url or "",
        )
    )
    number = f" #{event.incident_number}" if event.incident_number else ""
    record(
        session,
        incident.id,
        now,
        actor,
        "pagerduty",
        f"Mirrors PagerDuty incident{number} ({event.incident_id}); PagerDuty escalates it",
        {
            "pd_incident": event.incident_id,
            "html_url": event.html_url,
            "event": event.event_type,
            "assignees": list(event.assignees),  # whom PagerDuty paged, for the post-mortem
        },
    )
    where = link(event.html_url, f"PagerDuty incident{number}") if event.html_url else f"PagerDuty{number}"
    details = [f":pager: Opened from {where}. PagerDuty's escalation pages for it; the bot does not."]
    if event.assignees:
        details.append(f"Assigned to {names(event.assignees)}.")
    say(session, incident, now, " ".join(details), trusted=True)
    runbooks.attach(ctx, session, incident, now)
    return incident


def names(names: tuple[str, ...]) -> str:
    return ", ".join(escape(n) for n in names) or "nobody"
