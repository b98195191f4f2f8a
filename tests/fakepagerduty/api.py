"""Request handlers of the fake: REST API v2 (`/incidents/{id}`, `/oncalls`) and Events API v2.

Each handler takes the fake's state (the caller holds its lock) and the parsed request, and returns a
`Result`. Only what the bot uses is implemented, but that part answers the way PagerDuty documents it.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import TYPE_CHECKING, Any

from .model import (
    ARGUMENTS_CAUSED_ERROR,
    AUTHENTICATION_FAILED,
    INVALID_INPUT,
    NOT_FOUND,
    Result,
    events_error,
    rest_error,
)

if TYPE_CHECKING:
    from .state import FakePagerDuty

_TOKEN = re.compile(r"^Token token=(\S+)$")
_NEED_FROM = 'You must specify a user\'s email address in the "From" header to perform this action'
_EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
_SEVERITIES = ("critical", "warning", "error", "info")
_ALERT_STATUS = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}


def authenticate(fake: FakePagerDuty, headers: dict[str, str]) -> Result | None:
    """401 unless `Authorization: Token token=<a known token>`."""
    match = _TOKEN.match(headers.get("authorization", "").strip())
    if match is None or match.group(1) not in fake.tokens:
        return rest_error(401, "Authentication failed", AUTHENTICATION_FAILED)
    return None


def rest(fake: FakePagerDuty, method: str, path: str, query: dict[str, list[str]], headers, body) -> Result:
    denied = authenticate(fake, headers)
    if denied is not None:
        return denied
    parts = path.strip("/").split("/")
    if method in ("PUT", "POST", "DELETE") and not headers.get("from"):
        return rest_error(400, "Invalid Input Provided", INVALID_INPUT, [_NEED_FROM])
    if len(parts) == 2 and parts[0] == "incidents":
        if method == "GET":
            return get_incident(fake, parts[1])
        if method == "PUT":
            return put_incident(fake, parts[1], body)
    if parts == ["oncalls"] and method == "GET":
        return list_oncalls(fake, query)
    return rest_error(404, "Not Found", NOT_FOUND)


def get_incident(fake: FakePagerDuty, incident_id: str) -> Result:
    incident = fake.incidents.get(incident_id)
    if incident is None:
        return rest_error(404, "Not Found", NOT_FOUND)
    return Result(200, {"incident": copy.deepcopy(incident)})


def put_incident(fake: FakePagerDuty, incident_id: str, body: Any) -> Result:
    """Only status changes: acknowledged (idempotent) or resolved (once, like PagerDuty)."""
    update = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(update, dict):
        return rest_error(400, "Invalid Input Provided", INVALID_INPUT, ["Incident must be an object."])
    problems = []
    if update.get("type") not in ("incident", "incident_reference"):
        problems.append("Incident type must be incident or incident_reference.")
    status = update.get("status")
    if status not in ("acknowledged", "resolved"):
        problems.append("Status must be acknowledged or resolved.")
    if problems:
        return rest_error(400, "Invalid Input Provided", INVALID_INPUT, problems)
    incident = fake.incidents.get(incident_id)
    if incident is None:
        return rest_error(404, "Not Found", NOT_FOUND)
    if incident["status"] == "resolved":
        return rest_error(
            400, "Arguments Caused Error", ARGUMENTS_CAUSED_ERROR, ["Incident Already Resolved"]
        )
    incident["status"] = status
    return Result(200, {"incident": copy.deepcopy(incident)})


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int | None:
    raw = query.get(name, [str(default)])[-1]
    return int(raw) if raw.isdigit() else None


def list_oncalls(fake: FakePagerDuty, query: dict[str, list[str]]) -> Result:
    """Classic pagination (limit/offset/more/total) over the configured entries, filtered by ids."""
    limit, offset = _int_param(query, "limit", 25), _int_param(query, "offset", 0)
    if limit is None or offset is None or not 1 <= limit <= 100:
        return rest_error(400, "Invalid Input Provided", INVALID_INPUT, ["Limit must be 1..100."])
    filters = {
        "schedule": set(query.get("schedule_ids[]", [])),
        "escalation_policy": set(query.get("escalation_policy_ids[]", [])),
        "user": set(query.get("user_ids[]", [])),
    }
    include = set(query.get("include[]", []))
    rows = []
    for entry in fake.oncalls:
        if all(not ids or (entry.get(kind) or {}).get("id") in ids for kind, ids in filters.items()):
            rows.append(_shaped(entry, include))
    page = rows[offset : offset + limit]
    total = len(rows) if query.get("total", ["false"])[-1].lower() in ("true", "1") else None
    body = {
        "oncalls": page,
        "limit": limit,
        "offset": offset,
        "more": offset + limit < len(rows),
        "total": total,
    }
    return Result(200, body)


def _shaped(entry: dict[str, Any], include: set[str]) -> dict[str, Any]:
    """Referenced objects stay references unless `include[]` asks for them in full."""
    entry = copy.deepcopy(entry)
    user = entry.get("user") or {}
    if "users" not in include and user:
        entry["user"] = {k: user[k] for k in ("id", "summary", "self", "html_url") if k in user}
        entry["user"]["type"] = "user_reference"
    return entry


def enqueue(fake: FakePagerDuty, body: Any) -> Result:
    """`POST /v2/enqueue`: validate like PagerDuty, remember the alert state, answer 202."""
    if not isinstance(body, dict):
        return events_error(400, "Event object is invalid", ["JSON parse error"])
    errors = []
    routing_key = body.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in _EVENT_ACTIONS:
        errors.append("'event_action' is invalid (must be one of: 'trigger', 'acknowledge' or 'resolve')")
    dedup_key = body.get("dedup_key")
    if action in ("acknowledge", "resolve") and not (isinstance(dedup_key, str) and dedup_key):
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors.extend(_payload_errors(body.get("payload")))
    if errors:
        return events_error(400, "Event object is invalid", errors)
    key = dedup_key if isinstance(dedup_key, str) and dedup_key else uuid.uuid4().hex
    fake.events.append(copy.deepcopy(body) | {"dedup_key": key})
    fake.alerts[(routing_key, key)] = _ALERT_STATUS[action]
    return Result(202, {"status": "success", "message": "Event processed", "dedup_key": key})


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = [
        f"'payload.{name}' is missing or blank" for name in ("summary", "source") if not payload.get(name)
    ]
    if payload.get("severity") not in _SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of: 'critical', 'warning', 'error' or 'info')"
        )
    return errors
