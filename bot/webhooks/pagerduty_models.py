"""The PagerDuty webhook V3 envelope as pydantic models, and its translation into the core event.

Shape (PagerDuty "Webhooks Overview"): `{"event": {"id", "event_type", "resource_type", "occurred_at",
"agent", "client", "data"}}`; `data.type` is `incident` for incident.* events and `incident_note` for
incident.annotated. Event types we don't handle (service.*, incident.responder.*, ...) validate with any
`data` and `to_core()` returns None, so the webhook can answer 2xx and PagerDuty stops retrying.
Validation errors name the field (`event.data.incident.status: ...`) via `bot.webhooks.common.validate`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from bot.core.pagerduty import DATA_TYPE_OF, PagerDutyEvent
from bot.webhooks.common import utc_time

# PagerDuty ids are about 7 characters; they end up in indexed columns, which have a size limit.
_ID = Annotated[str, Field(min_length=1, max_length=256)]


class Reference(BaseModel):
    """A PagerDuty `*_reference` object (user, service, escalation policy, priority, incident)."""

    model_config = ConfigDict(extra="ignore")

    id: _ID
    type: str = ""
    summary: str | None = None
    html_url: str | None = None


class ConferenceBridge(BaseModel):
    """`data.conference_bridge`: a dial-in number (`+1 415-555-1212,,,,1234#`) and/or a URL.
    Only shown on the card: a value of the wrong kind is dropped, never a reason to refuse the event."""

    model_config = ConfigDict(extra="ignore")

    conference_number: str | None = None
    conference_url: str | None = None

    @field_validator("conference_number", "conference_url", mode="before")
    @classmethod
    def _text_or_nothing(cls, value: Any) -> str | None:
        return value if isinstance(value, str) else None


class IncidentData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["incident"]
    id: _ID
    number: int
    title: str
    status: Literal["triggered", "acknowledged", "resolved"]
    urgency: Literal["high", "low"]
    html_url: str
    service: Reference
    assignees: list[Reference] = Field(default_factory=list)
    escalation_policy: Reference | None = None
    priority: Reference | None = None
    conference_bridge: ConferenceBridge | None = None

    @field_validator("conference_bridge", mode="before")
    @classmethod
    def _bridge_or_nothing(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None


class NoteData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["incident_note"]
    id: _ID
    content: str
    trimmed: bool = False
    incident: Reference


def _data_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("incident", "incident_note") else "other"


EventData = Annotated[
    Annotated[IncidentData, Tag("incident")]
    | Annotated[NoteData, Tag("incident_note")]
    | Annotated[dict[str, Any], Tag("other")],
    Discriminator(_data_kind),
]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=256)
    event_type: str = Field(min_length=1)
    resource_type: str = ""
    occurred_at: datetime
    agent: Reference | None = None
    client: dict[str, Any] | None = None
    data: EventData

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return utc_time(value)

    @model_validator(mode="after")
    def _data_matches_type(self) -> EventIn:
        expected = DATA_TYPE_OF.get(self.event_type)
        actual = getattr(self.data, "type", None)
        if expected is not None and actual != expected:
            raise ValueError(f"{self.event_type} needs data.type {expected!r}, got {actual!r}")
        return self


class WebhookIn(BaseModel):
    """One V3 webhook delivery (always exactly one event)."""

    model_config = ConfigDict(extra="ignore")

    event: EventIn

    @property
    def handled(self) -> bool:
        return self.event.event_type in DATA_TYPE_OF

    def to_core(self) -> PagerDutyEvent | None:
        """The normalised event, or None for an event type the bot does not act on."""
        event = self.event
        if not self.handled:
            return None
        agent = event.agent
        common = {
            "id": event.id,
            "event_type": event.event_type,
            "occurred_at": event.occurred_at,
            "agent": agent.summary if agent else None,
            "agent_type": (agent.type or None) if agent else None,
        }
        data = event.data
        if isinstance(data, NoteData):
            return PagerDutyEvent(
                **common,
                incident_id=data.incident.id,
                incident_number=None,
                title=data.incident.summary or "",
                status=None,
                urgency=None,
                priority=None,
                html_url=data.incident.html_url,
                service_name=None,
                assignees=(),
                escalation_policy=None,
                note=data.content,
            )
        assert isinstance(data, IncidentData)  # guaranteed by _data_matches_type
        return PagerDutyEvent(
            **common,
            incident_id=data.id,
            incident_number=data.number,
            title=data.title,
            status=data.status,
            urgency=data.urgency,
            priority=data.priority.summary if data.priority else None,
            html_url=data.html_url,
            service_name=data.service.summary,
            assignees=tuple(a.summary or a.id for a in data.assignees),
            escalation_policy=data.escalation_policy.summary if data.escalation_policy else None,
            note=None,
            conference_url=bridge.conference_url if (bridge := data.conference_bridge) else None,
            conference_number=bridge.conference_number if bridge else None,
        )
