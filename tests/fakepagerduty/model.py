"""Plain data for the fake PagerDuty: recorded calls, answers, and builders for API-shaped objects.

Shapes follow PagerDuty's REST API v2 (wrapped entities, `{"error": {"message", "code", "errors"}}`)
and Events API v2 (`{"status", "message", "dedup_key"}` / `{"status", "message", "errors"}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKEN = "pd-test-token"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # Events API integration keys are 32 characters
FAKE_WEB_URL = "https://fake.pagerduty.com"
FAKE_API_URL = "https://api.pagerduty.com"

# PagerDuty REST error codes the fake uses.
INVALID_INPUT = 2001
ARGUMENTS_CAUSED_ERROR = 2002
AUTHENTICATION_FAILED = 2006
RATE_LIMITED = 2020
NOT_FOUND = 2100


@dataclass
class Result:
    """What the HTTP layer sends back for one request."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One recorded request (faulted or not), so tests can assert on exactly what the bot sent."""

    index: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # decoded JSON, or the raw text when it wasn't JSON
    status: int | None  # None when a fault dropped the connection
    response: dict[str, Any] | None
    fault: dict[str, Any] | None
    at: float  # time.monotonic() on arrival

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def rest_error(status: int, message: str, code: int, errors: list[str] | None = None) -> Result:
    error: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        error["errors"] = errors
    return Result(status, {"error": error})


def events_error(status: int, message: str, errors: list[str]) -> Result:
    return Result(status, {"status": "invalid event", "message": message, "errors": errors})


def reference(kind: str, id_: str, summary: str, collection: str | None = None) -> dict[str, Any]:
    collection = collection or f"{kind}s"
    return {
        "id": id_,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"{FAKE_API_URL}/{collection}/{id_}",
        "html_url": f"{FAKE_WEB_URL}/{collection}/{id_}",
    }


def make_incident(incident_id: str, status: str, number: int, **fields: Any) -> dict[str, Any]:
    """A full incident object as `GET /incidents/{id}` returns it; `fields` override the defaults."""
    incident = {
        "id": incident_id,
        "type": "incident",
        "summary": f"[#{number}] Fake incident {incident_id}",
        "self": f"{FAKE_API_URL}/incidents/{incident_id}",
        "html_url": f"{FAKE_WEB_URL}/incidents/{incident_id}",
        "incident_number": number,
        "title": f"Fake incident {incident_id}",
        "status": status,
        "urgency": "high",
        "created_at": "2024-05-14T09:12:03Z",
        "service": reference("service", "PSVC001", "Fake Service"),
        "escalation_policy": reference("escalation_policy", "PEP0001", "Fake Policy", "escalation_policies"),
        "assignments": [],
        "priority": None,
    }
    incident.update(fields)
    return incident


def make_oncall(
    user_id: str,
    name: str,
    email: str | None = None,
    *,
    level: int = 1,
    schedule_id: str | None = None,
    escalation_policy_id: str = "PEP0001",
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """One on-call entry as stored: `user` is the full user (the fake trims it to a reference unless
    the request asks for `include[]=users`, like PagerDuty)."""
    user = reference("user", user_id, name) | {
        "name": name,
        "email": email or f"{user_id.lower()}@example.com",
    }
    user["type"] = "user"
    return {
        "escalation_policy": reference(
            "escalation_policy", escalation_policy_id, f"Policy {escalation_policy_id}", "escalation_policies"
        ),
        "escalation_level": level,
        "schedule": reference("schedule", schedule_id, f"Schedule {schedule_id}") if schedule_id else None,
        "user": user,
        "start": start,
        "end": end,
    }
