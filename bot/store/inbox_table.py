"""The inbox: every webhook an outside system sent us, stored before it is answered (DESIGN rule 6).

A row is written once at accept (source, group key, the validated payload) and then drained in id
order per lane (one lane per alert group or PagerDuty incident): `pending` until a drain applies it
in the same transaction that records its `decision`, `parked` after repeated failures (a person
retries it with `incidentbot inbox retry`), `done` rows are kept for INBOX_RETENTION.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime


class InboxRow(SQLModel, table=True):
    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_lane", "status", "lane", "id"),  # is an earlier row of the lane pending?
        Index("ix_inbox_ready", "status", "id"),  # arrival order
        Index("ix_inbox_done", "status", "done_at"),  # retention
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str  # alertmanager | pagerduty
    group_key: str = Field(sa_column=Column(Text, nullable=False))  # receiver|groupKey, PD incident
    lane: str  # a short hash of source and group key: rows of one lane are applied in order
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_type=UTCDateTime)
    status: str = "pending"  # pending | done | parked
    attempts: int = 0
    not_before: datetime = Field(sa_type=UTCDateTime)  # a failed row waits out its backoff
    last_error: str | None = None
    decision: str | None = None  # what it led to: "first notification", "opened", ...
    incident_id: int | None = None
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
