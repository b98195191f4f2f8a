"""What the card shows of a PagerDuty incident beyond its status: whom PagerDuty assigned it to and
its conference bridge. Kept in the incident's `common_annotations` (a JSON column; no schema change),
under keys no Alertmanager annotation of a PagerDuty incident can collide with."""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.pagerduty import PagerDutyEvent
from bot.store.tables import Incident

ASSIGNEES = "pagerduty_assignees"  # names, one per line
CONFERENCE_URL = "pagerduty_conference_url"
CONFERENCE_NUMBER = "pagerduty_conference_number"
VALUE_MAX = 2000  # the card links a URL up to 1000 characters and shows 100 of a number


def assignees(annotations: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(n for n in annotations.get(ASSIGNEES, "").split("\n") if n)


def remember(incident: Incident, event: PagerDutyEvent) -> bool:
    """Take the assignees and bridge of an incident event; True when the card should change.

    An event without assignees keeps the last known ones: PagerDuty empties them when the incident
    resolves, and the card should still say who had it. Notes carry neither (`status` is None)."""
    if event.status is None:
        return False
    details = dict(incident.common_annotations)
    if event.assignees:
        details[ASSIGNEES] = "\n".join(" ".join(name.split()) for name in event.assignees)
    for key, value in ((CONFERENCE_URL, event.conference_url), (CONFERENCE_NUMBER, event.conference_number)):
        if value and value.strip():
            details[key] = value.strip()[:VALUE_MAX]
    if details == incident.common_annotations:
        return False
    incident.common_annotations = details  # a new dict: SQLAlchemy sees the JSON column change
    return True
