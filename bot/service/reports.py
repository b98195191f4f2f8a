"""Reports over many incidents: load what `bot.core.reports.report` needs from the store."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlmodel import col, select

from bot.core.reports import ReportIncident, ReportPage
from bot.service.context import Context
from bot.service.people import people_paged
from bot.store.db import reading
from bot.store.tables import Alert, Incident, Page, TimelineEntry


def ack_channel(actor: str, data: dict) -> str:
    """Where an acknowledgement came from: recorded since issue 18; before it, the actor says
    (PagerDuty's webhooks, else Slack: the only other way there was)."""
    if data.get("via"):
        return str(data["via"])
    return "pagerduty" if actor.startswith("pagerduty") else "slack"


def incidents_since(ctx: Context, since: datetime) -> list[ReportIncident]:
    """Incidents declared at or after `since` (aware), oldest first, with alert names and pages."""
    with reading(ctx.engine) as session:
        incidents = list(
            session.exec(
                select(Incident)
                .where(col(Incident.created_at) >= since)
                .order_by(col(Incident.created_at), col(Incident.id))
            )
        )
        chosen = select(Incident.id).where(col(Incident.created_at) >= since)
        names: defaultdict[int, list[str]] = defaultdict(list)
        for incident_id, name in session.exec(
            select(Alert.incident_id, Alert.name)
            .where(col(Alert.incident_id).in_(chosen))
            .order_by(col(Alert.id))
        ):
            names[incident_id].append(name)
        # One person once, whether paged by key, by mention or found by email (bot.core.people).
        people = people_paged(ctx, session)
        pages: defaultdict[int, list[ReportPage]] = defaultdict(list)
        for page in session.exec(
            select(Page).where(col(Page.incident_id).in_(chosen)).order_by(col(Page.paged_at), col(Page.id))
        ):
            key = people.key(page.person) or people.key(page.slack_user) or people.key(page.email)
            person = key or page.person
            pages[page.incident_id].append(ReportPage(person, page.step_key, people.name(person)))
        via: dict[int, str] = {}  # the first acknowledgement's channel (MTTA counts the first)
        for entry in session.exec(
            select(TimelineEntry)
            .where(col(TimelineEntry.incident_id).in_(chosen), col(TimelineEntry.kind) == "status")
            .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
        ):
            if entry.data.get("to") == "acknowledged" and entry.incident_id not in via:
                via[entry.incident_id] = ack_channel(entry.actor, entry.data)
    out = []
    for inc in incidents:
        assert inc.id is not None
        out.append(
            ReportIncident(
                id=inc.id,
                severity=inc.severity,
                created_at=inc.created_at,
                # MTTA counts the first acknowledgement, kept across un-acknowledge and reopen.
                acknowledged_at=inc.first_acknowledged_at or inc.acknowledged_at,
                resolved_at=inc.resolved_at,
                alert_names=tuple(names[inc.id]),
                pages=tuple(pages[inc.id]),
                acknowledged_via=via.get(inc.id),
            )
        )
    return out
