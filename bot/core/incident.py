"""The incident state machine, stated as data.

triggered ──ack──> acknowledged ──resolve──> resolved ──close──> closed
    │  ^────unack────┘                        │  ^                  │
    └───────────────resolve───────────────────┘  └──── reopen ──────┘ (back to triggered)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bot.core.errors import IllegalTransition


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Event(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (Status.TRIGGERED, Event.ACKNOWLEDGE): Status.ACKNOWLEDGED,
    (Status.TRIGGERED, Event.RESOLVE): Status.RESOLVED,
    (Status.ACKNOWLEDGED, Event.UNACKNOWLEDGE): Status.TRIGGERED,
    (Status.ACKNOWLEDGED, Event.RESOLVE): Status.RESOLVED,
    (Status.RESOLVED, Event.CLOSE): Status.CLOSED,
    (Status.RESOLVED, Event.REOPEN): Status.TRIGGERED,
    (Status.CLOSED, Event.REOPEN): Status.TRIGGERED,
}

OPEN_STATUSES = frozenset({Status.TRIGGERED, Status.ACKNOWLEDGED})


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"


# Alertmanager `severity` label -> our severity; anything else is SEV3.
_SEVERITY_LABELS = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "sev1": Severity.SEV1,
    "error": Severity.SEV2,
    "warning": Severity.SEV2,
    "sev2": Severity.SEV2,
    "info": Severity.SEV3,
    "sev3": Severity.SEV3,
}


def severity_from_label(value: str | None) -> Severity:
    return _SEVERITY_LABELS.get((value or "").strip().lower(), Severity.SEV3)


@dataclass(frozen=True)
class IncidentState:
    """The part of an incident the state machine needs; stores map their rows onto it."""

    status: Status
    created_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    # The first acknowledgement ever (MTTA): un-acknowledging or reopening keeps it.
    first_acknowledged_at: datetime | None = None


def can(status: Status, event: Event) -> bool:
    return (status, event) in TRANSITIONS


def apply(state: IncidentState, event: Event, actor: str, now: datetime) -> IncidentState:
    """The state after `event`, or IllegalTransition naming what is allowed instead."""
    target = TRANSITIONS.get((state.status, event))
    if target is None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == state.status)
        raise IllegalTransition(
            f"cannot {event.value} an incident that is {state.status.value}"
            + (f" (possible: {', '.join(allowed)})" if allowed else "")
        )
    match event:
        case Event.ACKNOWLEDGE:
            first = state.first_acknowledged_at or now
            return replace(
                state,
                status=target,
                acknowledged_at=now,
                acknowledged_by=actor,
                first_acknowledged_at=first,
            )
        case Event.UNACKNOWLEDGE:
            return replace(state, status=target, acknowledged_at=None, acknowledged_by=None)
        case Event.RESOLVE:
            return replace(state, status=target, resolved_at=now, resolved_by=actor)
        case Event.CLOSE:
            return replace(state, status=target, closed_at=now)
        case Event.REOPEN:
            return replace(
                state,
                status=target,
                acknowledged_at=None,
                acknowledged_by=None,
                resolved_at=None,
                resolved_by=None,
                closed_at=None,
            )
    raise AssertionError(event)  # pragma: no cover - every Event is matched above
