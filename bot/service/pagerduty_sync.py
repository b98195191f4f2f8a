"""Telling PagerDuty about what happened here (never about what PagerDuty told us).

To PagerDuty: acknowledging or resolving in Slack (`mirror`) enqueues `pd_update` (REST `PUT
/incidents/{id}`) for a PagerDuty-backed incident and `pd_event` acknowledge/resolve for every Events
API routing key the incident triggered, on the incident's own PagerDuty lane (`pagerduty:<id>`), so
trouble on one side never delays the other. Escalation steps call `trigger` and `page_level`.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.incident import Severity
from bot.core.pagerduty import EVENT_SEVERITY
from bot.core.rotations import Rotation
from bot.service.timeline import record
from bot.store import outbox
from bot.store.tables import Incident, Page, TimelineEntry

DEDUP_PREFIX = "incidentbot-"
TRIGGERED_KIND = "pagerduty_trigger"  # timeline rows naming each routing key an incident triggered
LEVEL_PREFIX = "pagerduty:level"  # Page.person until the page is resolved against PagerDuty's on-call


def dedup_key(incident: Incident) -> str:
    """The Events API dedup key of our pages: one PagerDuty alert per incident and routing key."""
    return f"{DEDUP_PREFIX}{incident.id}"


def pd_lane(incident: Incident) -> str:
    return f"pagerduty:{incident.id}"


# Said where a PagerDuty incident is acknowledged or resolved in Slack when PagerDuty can't be told.
NOT_UPDATED = "PagerDuty is not updated (PAGERDUTY_API_TOKEN is not set)"


def here_only(incident: Incident, api: bool) -> bool:
    """A change to a PagerDuty incident stays here: without an API token PagerDuty is never told."""
    return bool(incident.external_id) and not api


def mirror(session: Session, incident: Incident, status: str, now: datetime, *, api: bool) -> None:
    """After an acknowledgement or resolution from Slack: tell PagerDuty (never for PD-made changes).
    Its incident needs the REST API (`api`: a token is set); Events API alerts need only their key."""
    assert status in ("acknowledged", "resolved")
    if incident.external_id and api:
        outbox.enqueue(
            session,
            pd_lane(incident),
            "pd_update",
            now,
            {"pd_incident": incident.external_id, "status": status},
            incident_id=incident.id,
            priority=outbox.PAGE,
        )
    action = "acknowledge" if status == "acknowledged" else "resolve"
    for key in triggered_keys(session, incident):
        outbox.enqueue(
            session,
            pd_lane(incident),
            "pd_event",
            now,
            {"action": action, "routing_key": key, "dedup_key": dedup_key(incident)},
            incident_id=incident.id,
            priority=outbox.PAGE,
        )


def triggered_keys(session: Session, incident: Incident) -> list[str]:
    """Routing keys this incident triggered an Events API alert on, in first-trigger order."""
    rows = session.exec(
        select(TimelineEntry.data)
        .where(col(TimelineEntry.incident_id) == incident.id, col(TimelineEntry.kind) == TRIGGERED_KIND)
        .order_by(col(TimelineEntry.id))
    )
    return list(dict.fromkeys(str(data["routing_key"]) for data in rows if data.get("routing_key")))


def trigger(
    session: Session, incident: Incident, routing_keys: list[str], step_key: str, now: datetime
) -> None:
    """An escalation step's Events API v2 `trigger`s (dedup key `incidentbot-<id>`), via the outbox."""
    assert incident.id is not None
    for key in routing_keys:
        outbox.enqueue(
            session,
            pd_lane(incident),
            "pd_event",
            now,
            {
                "action": "trigger",
                "routing_key": key,
                "dedup_key": dedup_key(incident),
                "summary": f"[incident #{incident.id}] {incident.title}"[:1024],
                "severity": _event_severity(incident.severity),
                "source": "incidentbot",
                "url": incident.external_url,
            },
            incident_id=incident.id,
            priority=outbox.PAGE,
        )
        record(
            session,
            incident.id,
            now,
            "bot",
            TRIGGERED_KIND,
            f"PagerDuty event triggered (routing key …{key[-4:]}, {step_key})",
            {"routing_key": key, "dedup_key": dedup_key(incident), "step": step_key},
        )


def _event_severity(severity: str) -> str:
    try:
        return EVENT_SEVERITY[Severity(severity)]
    except (ValueError, KeyError):
        return "error"


def page_level(
    session: Session, incident: Incident, rotation: Rotation, level: int, step_key: str, now: datetime
) -> Page:
    """A page for whoever PagerDuty has on call at `level` of a PagerDuty-sourced rotation.

    Who that is needs a PagerDuty call, which has no place in this transaction: the Page row names the
    level, and `pd_page` (delivery) looks the person up and hands over to the usual `page` DM.
    """
    assert incident.id is not None and rotation.pagerduty is not None
    page = Page(
        incident_id=incident.id,
        person=f"{LEVEL_PREFIX}{level}",
        layer=f"PagerDuty level {level}",
        step_key=step_key,
        paged_at=now,
    )
    session.add(page)
    session.flush()
    outbox.enqueue(
        session,
        f"pagerduty-oncall:{incident.id}",  # lookups that wait for PagerDuty never hold up `pd_update`
        "pd_page",
        now,
        {
            "page_id": page.id,
            "level": level,
            "schedule_id": rotation.pagerduty.schedule_id,
            "escalation_policy_id": rotation.pagerduty.escalation_policy_id,
        },
        incident_id=incident.id,
        priority=outbox.PAGE,
    )
    return page
