"""PagerDuty as the core sees it: webhook signatures, one normalised event, severities, on-call rows.

Pure: no pydantic, no HTTP. `bot/webhooks/pagerduty_models.py` validates the V3 webhook envelope and
turns it into a `PagerDutyEvent`; `bot/integrations/pagerduty.py` returns `OnCallEntry` rows.

Signatures (PagerDuty "Verifying Signatures", webhooks V3): `X-PagerDuty-Signature` carries one or more
comma-separated `v1=<hex HMAC-SHA256 of the raw body>`, one per signing secret of the subscription, so a
secret can be rotated without downtime. A delivery is authentic when any signature matches any of our
secrets; we configure several secrets for the same reason (old and new during a rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.incident import Severity

SIGNATURE_HEADER = "X-PagerDuty-Signature"
SIGNATURE_VERSION = "v1"

# Webhook V3 event types the bot acts on; every other type is answered 2xx and ignored.
HANDLED_EVENT_TYPES = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.escalated",
        "incident.reassigned",
        "incident.priority_updated",
        "incident.annotated",
    }
)
# `event.data.type` each handled event type carries (PagerDuty "Event Data Types").
DATA_TYPE_OF = {event_type: "incident" for event_type in HANDLED_EVENT_TYPES} | {
    "incident.annotated": "incident_note"
}


def parse_secrets(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """`PAGERDUTY_WEBHOOK_SECRET` ("new,old") as a tuple of non-empty secrets."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s for s in (p.strip() for p in parts) if s)


def verify_signature(raw_body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True when any `v1=` signature in `header` is the HMAC-SHA256 of `raw_body` under any secret.

    Compares in constant time and checks every pair (no early exit), so timing says nothing about
    which secret or signature came close. No secrets configured means nothing verifies.
    """
    if not header:
        return False
    prefix = f"{SIGNATURE_VERSION}="
    provided = [
        part.strip()[len(prefix) :].lower().encode("utf-8", "replace")
        for part in header.split(",")
        if part.strip().startswith(prefix)
    ]
    keys = [s.encode("utf-8") for s in secrets if s]
    valid = False
    for key in keys:
        expected = hmac.new(key, raw_body, hashlib.sha256).hexdigest().encode("ascii")
        for signature in provided:
            valid |= hmac.compare_digest(expected, signature)
    return valid


# -- severity ------------------------------------------------------------------------------------------

_PRIORITY_NAME = re.compile(r"^(?:p|sev)[-\s]?(\d+)$", re.IGNORECASE)


def severity_from(priority: str | None, urgency: str | None) -> Severity:
    """Our severity from a PagerDuty incident's priority name and urgency.

    * A recognised priority decides, because someone chose it for impact: P1 (or SEV1/SEV-1) -> SEV1,
      P2 -> SEV2, P3 and lower -> SEV3.
    * Without a priority (or with a custom name we can't read) urgency decides: high -> SEV1
      (PagerDuty pages for it, so it is treated as the worst case), low -> SEV3.
    """
    match = _PRIORITY_NAME.match((priority or "").strip())
    if match:
        level = int(match.group(1))
        return Severity.SEV1 if level <= 1 else Severity.SEV2 if level == 2 else Severity.SEV3
    return Severity.SEV1 if (urgency or "").lower() == "high" else Severity.SEV3


# Events API v2 `payload.severity` for a page we send (critical, error, warning or info).
EVENT_SEVERITY = {Severity.SEV1: "critical", Severity.SEV2: "error", Severity.SEV3: "warning"}


# -- normalised data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PagerDutyEvent:
    """One V3 webhook event about an incident, flattened to what the service needs.

    For `incident.annotated` PagerDuty sends the note, not the incident: `title` is the incident
    reference's summary and the incident-only fields (number, status, urgency, ...) are None.
    """

    id: str  # event.id: the idempotency key of the delivery
    event_type: str
    occurred_at: datetime  # aware
    incident_id: str
    incident_number: int | None
    title: str
    status: str | None  # triggered | acknowledged | resolved
    urgency: str | None  # high | low
    priority: str | None  # the priority's name, e.g. "P1"
    html_url: str | None
    service_name: str | None
    assignees: tuple[str, ...]  # user summaries (names)
    escalation_policy: str | None
    agent: str | None  # who or what caused it (summary), None when PagerDuty itself did
    agent_type: str | None  # e.g. user_reference, service_reference
    note: str | None  # the note's content for incident.annotated
    # The incident's conference bridge (`data.conference_bridge`), when it has one.
    conference_url: str | None = None
    conference_number: str | None = None

    @property
    def severity(self) -> Severity:
        return severity_from(self.priority, self.urgency)


@dataclass(frozen=True)
class OnCallEntry:
    """One row of PagerDuty's `GET /oncalls`: who is on call at which escalation level, and until when.

    `start`/`end` are None when the level targets a user directly (always on call).
    """

    escalation_level: int
    user_id: str
    user_summary: str
    user_email: str | None
    start: datetime | None
    end: datetime | None
    schedule_id: str | None = None
    escalation_policy_id: str | None = None
