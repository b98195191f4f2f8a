"""What an outbox operation knows of an incident: its row and alerts as the database has them at
delivery, and for the card also its pages and what the escalation does next. Read in one session,
rendered (`Snapshot.view`) outside it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.catalog.rotations import Catalog
from bot.core.escalation import StepPreview
from bot.core.postmortem import step_label
from bot.core.rotations import Person
from bot.service import escalation_plan, pagerduty_details
from bot.slack import views
from bot.store.db import reading
from bot.store.tables import Alert, Incident, Page, TimelineEntry

CHANNEL_REFUSED = "channel_refused"  # the timeline entry saying why an incident is in a thread


@dataclass
class Snapshot:
    incident: Incident
    alerts: list[Alert]
    groups: list[Incident] = field(default_factory=list)  # a storm's folded alert groups
    silences: bool = False  # the card can offer Silence: the bot can reach Alertmanager's API
    pages: list[Page] = field(default_factory=list)
    next_step: StepPreview | None = None  # what the pending escalation step will page, and when
    people: Mapping[str, Person] = field(default_factory=dict)  # people.yaml, for display names
    refused: str | None = None  # Slack's answer when no channel could be made (it is in a thread)

    def view(self) -> views.IncidentView:
        inc = self.incident
        assert inc.id is not None
        extra = inc.common_annotations
        return views.IncidentView(
            id=inc.id,
            title=inc.title,
            severity=inc.severity,
            status=inc.status,
            source=inc.source,
            created_at=inc.created_at,
            channel_id=inc.channel_id,
            channel_name=inc.channel_name,
            external_url=inc.external_url,
            group_labels=inc.group_labels,
            acknowledged_by=inc.acknowledged_by,
            acknowledged_at=inc.acknowledged_at,
            resolved_by=inc.resolved_by,
            resolved_at=inc.resolved_at,
            alerts=[
                views.AlertView(
                    a.name, a.status, a.labels, a.annotations, a.starts_at, a.generator_url, a.ends_at
                )
                for a in self.alerts
            ],
            groups=[views.GroupView(g.title, g.severity, g.status) for g in self.groups],
            silences=self.silences,
            silenced_until=inc.silenced_until,
            silenced_by=inc.silenced_by,
            rotation=inc.rotation,
            lead=inc.lead,
            description=extra.get("description", "") if inc.source == "manual" else "",
            pages=[self._page_view(p) for p in self.pages],
            next_step=self.next_step,
            pagerduty_assignees=pagerduty_details.assignees(extra) if inc.source == "pagerduty" else (),
            conference_url=extra.get(pagerduty_details.CONFERENCE_URL, ""),
            conference_number=extra.get(pagerduty_details.CONFERENCE_NUMBER, ""),
            truncated_alerts=inc.truncated_alerts,
        )

    def _page_view(self, page: Page) -> views.PageView:
        known = self.people.get(page.person)
        name = known.display_name or known.name if known else page.person
        label = "paged by hand" if page.step_key == "manual" else step_label(page.step_key)
        return views.PageView(
            name=name,
            slack_user=page.slack_user,
            label=f"{page.layer}, {label}" if page.layer else label,
            failure=page.failure if page.failed_at else None,
        )


def read_snapshot(
    engine: Engine, incident_id: int | None, silences: bool, rotations: Catalog | None, *, card: bool
) -> Snapshot | None:
    """None when the incident is gone. `card`: also its pages and the next escalation step."""
    with reading(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return None
        alerts = list(
            session.exec(select(Alert).where(col(Alert.incident_id) == incident_id).order_by(col(Alert.id)))
        )
        groups = (
            list(session.exec(select(Incident).where(col(Incident.parent_id) == incident_id)))
            if incident.source == "storm"
            else []
        )
        refused = None
        if incident.thread_ts:
            refusal = session.exec(
                select(TimelineEntry.data).where(
                    col(TimelineEntry.incident_id) == incident_id, col(TimelineEntry.kind) == CHANNEL_REFUSED
                )
            ).first()
            refused = str((refusal or {}).get("error") or "refused")
        if not card:
            return Snapshot(incident, alerts, groups, silences, refused=refused)
        pages = list(
            session.exec(select(Page).where(col(Page.incident_id) == incident_id).order_by(col(Page.id)))
        )
        return Snapshot(
            incident,
            alerts,
            groups,
            silences,
            pages,
            escalation_plan.upcoming(session, rotations, incident),
            rotations.people if rotations else {},
            refused,
        )
