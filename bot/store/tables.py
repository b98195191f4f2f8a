"""The database is the truth: incidents, their alerts, timeline, outbound calls and timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.inbox_table import InboxRow  # noqa: F401  (one of the tables; its own module)
from bot.store.types import UTCDateTime


def _utc(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Incident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    source: str  # alertmanager | pagerduty | manual
    title: str
    severity: str
    status: str
    # Set while the incident is open: a unique key makes webhook retries and racing replicas
    # land on the same row. Cleared on resolution so that a new fire opens a new incident.
    open_key: str | None = Field(default=None, unique=True)
    group_key: str | None = Field(default=None, index=True)
    group_labels: dict[str, str] = _json()
    common_annotations: dict[str, str] = _json()
    external_url: str = ""
    previous_id: int | None = None
    channel_name: str = Field(unique=True)  # reserved at open, so replicas never pick the same
    channel_id: str | None = None
    card_ts: str | None = None
    topic: str | None = None  # last topic set, so an unchanged topic is not set again
    announce_ts: str | None = None
    created_at: datetime = _utc()
    acknowledged_at: datetime | None = _utc(default=None, nullable=True)
    acknowledged_by: str | None = None
    # The first acknowledgement ever (MTTA): kept when PagerDuty un-acknowledges or we reopen.
    first_acknowledged_at: datetime | None = _utc(default=None, nullable=True)
    resolved_at: datetime | None = _utc(default=None, nullable=True)
    resolved_by: str | None = None
    closed_at: datetime | None = _utc(default=None, nullable=True)
    rotation: str | None = None
    # Paging restarts from step 0 on reopen: a new cycle, with the plan anchored at `anchor`.
    paging_cycle: int = 0
    escalation_anchor: datetime | None = _utc(default=None, nullable=True)
    lead: str | None = None
    # The PagerDuty incident this one mirrors (source "pagerduty"), for acks and resolutions.
    external_id: str | None = Field(default=None, unique=True)
    silences: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The card's silence while one is active: until when and by whom (the card says so).
    silenced_until: datetime | None = _utc(default=None, nullable=True)
    silenced_by: str | None = None
    # Alerts Alertmanager left out of the group (its `truncatedAlerts`, the receiver's max_alerts).
    truncated_alerts: int = 0
    # Set when the incident lives in a thread (of the announce channel or a DM) because its own
    # channel could not be created; `channel_id` is then that channel.
    thread_ts: str | None = None
    # Alert storms: the route an incident opened from (to count openings per route), and for a
    # group folded into a storm incident, that incident (a folded group has no channel of its own).
    route_key: str | None = Field(default=None, index=True)
    parent_id: int | None = Field(default=None, index=True)
    # Who declared it by hand (a Slack user ID): declarations per person are rate-limited.
    declared_by: str | None = Field(default=None, index=True)


class Alert(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("incident_id", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    fingerprint: str
    name: str = ""
    status: str
    labels: dict[str, str] = _json()
    annotations: dict[str, str] = _json()
    starts_at: datetime = _utc()
    ends_at: datetime | None = _utc(default=None, nullable=True)
    generator_url: str = ""


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = _utc()
    actor: str  # "alertmanager", "bot", "slack:U123", ...
    kind: str
    text: str
    data: dict[str, Any] = _json()


class Outbox(SQLModel, table=True):
    """One outbound call, delivered by the worker in id order within its lane."""

    __table_args__ = (
        Index("ix_outbox_pending", "status", "lane", "id"),  # lane heads
        Index("ix_outbox_ready", "status", "priority", "id"),  # claim order
    )

    id: int | None = Field(default=None, primary_key=True)
    lane: str  # calls in one lane are delivered strictly in order (one lane per incident)
    incident_id: int | None = Field(default=None, index=True)
    op: str
    payload: dict[str, Any] = _json()
    priority: int = 5  # lower is more urgent: pages go before cosmetic updates
    status: str = "pending"  # pending | sent | failed | superseded
    attempts: int = 0
    in_flight: bool = False  # an attempt started whose outcome we never learned (crash)
    not_before: datetime = _utc()
    lease_until: datetime | None = _utc(default=None, nullable=True)
    lease_owner: str | None = None
    last_error: str | None = None
    created_at: datetime = _utc()
    done_at: datetime | None = _utc(default=None, nullable=True)


class Timer(SQLModel, table=True):
    """Something due at a time (an escalation step, a final notice, an archive).

    The scheduler claims due rows; the unique key makes scheduling the same step twice a no-op.
    """

    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "key"),
        Index("ix_timer_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    kind: str  # escalation | final_notice | archive
    key: str  # e.g. "c0r0s1": paging cycle, round, step
    due_at: datetime = _utc()
    status: str = "pending"  # pending | fired | cancelled
    fired_at: datetime | None = _utc(default=None, nullable=True)
    payload: dict[str, Any] = _json()


class Page(SQLModel, table=True):
    """One person paged for one incident at one escalation step."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    person: str
    layer: str | None = None
    step_key: str
    email: str | None = None
    slack_user: str | None = None
    dm_channel: str | None = None
    dm_ts: str | None = None
    paged_at: datetime = _utc()
    # A page that could not be delivered for good: when, and what the far side answered.
    failed_at: datetime | None = _utc(default=None, nullable=True)
    failure: str | None = None


class Notification(SQLModel, table=True):
    """One way of reaching one paged person: a method of one of their notification rules (issue 18),
    or a test page (`test_by` set, no incident). Its outbox row (`notify`, or `page` for Slack)
    delivers it; this row says how it stands, so a rule fires once and a failure moves to the next."""

    __table_args__ = (UniqueConstraint("page_id", "rule", "method"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    page_id: int | None = Field(default=None, foreign_key="page.id", index=True)
    person: str
    rule: int = 0  # index in the person's rules for this incident
    method: str  # slack | email | sms | voice | ntfy | pushover | webhook
    address: str = ""  # where it goes (topic, address, number, URL), as configured when paged
    status: str = "pending"  # pending | sent | failed | cancelled
    answer: str | None = None  # what the provider answered (its receipt, or why it failed)
    created_at: datetime = _utc()
    done_at: datetime | None = _utc(default=None, nullable=True)
    test_by: str | None = None  # a test page: who asked for it ("slack:U123", "cli")
    confirmed_at: datetime | None = _utc(default=None, nullable=True)  # a test acknowledged


class RunbookPost(SQLModel, table=True):
    """A runbook posted in an incident channel: its messages and which steps are done by whom."""

    __table_args__ = (UniqueConstraint("incident_id", "slug"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    slug: str
    messages: dict[str, str] = _json()  # message index (as text) -> ts
    done: dict[str, list[str]] = _json()  # step number (as text) -> [slack user, ISO time]


class WebhookReceipt(SQLModel, table=True):
    """Deliveries already processed (PagerDuty delivers at least once and retries for 48 h)."""

    __table_args__ = (UniqueConstraint("source", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    key: str  # e.g. "event:<event.id>" or "webhook:<X-Webhook-Id>"
    received_at: datetime = _utc()


class ChannelMember(SQLModel, table=True):
    """Who is in a channel the bot is in, as Slack told us (member_joined_channel and
    member_left_channel events, conversations.members): a permission fact that holds while Slack's
    Web API is down, when acknowledging matters most."""

    __table_args__ = (UniqueConstraint("channel_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str
    user_id: str
    since: datetime = _utc()


class Instance(SQLModel, table=True):
    """One row, made by the first migration: an id unique to this database. Messages the bot
    posts carry it, so a lookup after a crash never mistakes another database's post for its own."""

    id: str = Field(primary_key=True)
    created_at: datetime = _utc()


# -- on-call from Slack (issue 19) ---------------------------------------------------------------


class OncallOverride(SQLModel, table=True):
    """An override made from Slack; layered over the rotation files (bot/core/schedule.py).

    Never deleted: removing one sets `removed_at`, and the schedule keeps the part that already
    happened (until `removed_at`), so post-mortems name who really was on call."""

    __tablename__ = "oncall_override"
    __table_args__ = (Index("ix_oncall_override_rotation_end", "rotation", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    rotation: str
    layer: str
    who: str  # people key of the person taking the shift
    starts_at: datetime = _utc()
    ends_at: datetime = _utc()
    created_by: str  # Slack user who asked
    created_at: datetime = _utc()
    removed_at: datetime | None = _utc(default=None, nullable=True)
    removed_by: str | None = None
    reason: str = ""
    swap_id: int | None = None  # made by taking this swap request


class SwapRequest(SQLModel, table=True):
    """ "Who can cover me?": posted in the rotation's channel with a Take button."""

    __tablename__ = "swap_request"

    id: int | None = Field(default=None, primary_key=True)
    rotation: str
    layer: str
    requester: str  # people key of the person who needs cover
    requested_by: str  # Slack user who asked (the requester, or an admin for them)
    starts_at: datetime = _utc()
    ends_at: datetime = _utc()
    reason: str = ""
    channel: str
    message_ts: str | None = None
    status: str = "open"  # open | taken | expired
    taken_by: str | None = None  # people key
    taken_by_user: str | None = None  # Slack user
    taken_at: datetime | None = _utc(default=None, nullable=True)
    expires_at: datetime = _utc()
    created_at: datetime = _utc()


class OncallAudit(SQLModel, table=True):
    """What changed who is on call, and who did it (`incidentbot oncall --history`)."""

    __tablename__ = "oncall_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(index=True)
    actor: str  # "slack:U123", "bot"
    # override_added | override_removed | override_replaced | swap_requested | swap_taken |
    # swap_expired | swap_unposted | handoff (part 2)
    kind: str
    rotation: str = Field(index=True)
    layer: str | None = None
    text: str
    data: dict[str, Any] = _json()
