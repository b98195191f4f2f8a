"""The inputs of a post-mortem: one plain record per store row, so the service maps rows field by
field and `bot.core.postmortem.build_facts` never sees the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    title: str
    severity: str
    status: str
    created_at: datetime
    source: str = ""
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    # The first acknowledgement (kept when PagerDuty un-acknowledges or the incident is reopened):
    # what "acknowledged" and the time to acknowledge mean in a post-mortem.
    first_acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    rotation: str | None = None
    lead: str | None = None
    channel_name: str = ""
    channel_id: str | None = None
    group_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""


@dataclass(frozen=True)
class AlertRecord:
    name: str
    status: str
    starts_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None
    generator_url: str = ""


@dataclass(frozen=True)
class TimelineRecord:
    at: datetime
    actor: str  # "slack:U123", "alertmanager", "bot"
    kind: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PageRecord:
    person: str
    step_key: str  # "c0r0s1": paging cycle, round, step
    paged_at: datetime
    layer: str | None = None
    slack_user: str | None = None
