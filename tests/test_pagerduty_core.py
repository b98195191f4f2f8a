"""PagerDuty in the core: webhook signatures, severity mapping, and envelope normalisation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.core.incident import Severity
from bot.core.pagerduty import (
    EVENT_SEVERITY,
    HANDLED_EVENT_TYPES,
    PagerDutyEvent,
    parse_secrets,
    severity_from,
    verify_signature,
)
from bot.webhooks.pagerduty_models import WebhookIn
from tests.fakepagerduty import sign_webhook

FIXTURES = Path(__file__).parent / "fixtures" / "pagerduty-v3" / "events"
BODY = b'{"event":{"id":"01EV","event_type":"incident.triggered"}}'
SECRET, OLD_SECRET = "s3cr3t-new", "s3cr3t-old"


def load(event_type: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{event_type}.json").read_text())


def to_core(payload: dict[str, Any]) -> PagerDutyEvent | None:
    return WebhookIn.model_validate(payload).to_core()


# -- signatures ----------------------------------------------------------------------------------------


def test_valid_signature_passes() -> None:
    assert verify_signature(BODY, sign_webhook(BODY, SECRET), [SECRET])


def test_wrong_secret_fails() -> None:
    assert not verify_signature(BODY, sign_webhook(BODY, "someone-else"), [SECRET])


@pytest.mark.parametrize("header", [None, "", "   ", "v1=", "v0=abc", "garbage"])
def test_missing_or_malformed_header_fails(header: str | None) -> None:
    assert not verify_signature(BODY, header, [SECRET])


def test_tampered_body_fails() -> None:
    header = sign_webhook(BODY, SECRET)
    assert not verify_signature(BODY.replace(b"triggered", b"resolved"), header, [SECRET])
    assert not verify_signature(BODY + b" ", header, [SECRET])


def test_one_valid_signature_among_several_passes() -> None:
    header = f"{sign_webhook(BODY, 'unknown-a')},{sign_webhook(BODY, SECRET)}, v1=deadbeef"
    assert verify_signature(BODY, header, [SECRET])


def test_rotation_either_configured_secret_verifies() -> None:
    secrets = parse_secrets(f"{SECRET}, {OLD_SECRET}")
    assert verify_signature(BODY, sign_webhook(BODY, OLD_SECRET), secrets)  # PagerDuty not yet rotated
    assert verify_signature(BODY, sign_webhook(BODY, SECRET), secrets)  # rotated
    assert verify_signature(BODY, sign_webhook(BODY, [SECRET, OLD_SECRET]), [SECRET])  # PD signs with both


def test_no_secrets_verifies_nothing() -> None:
    assert not verify_signature(BODY, sign_webhook(BODY, SECRET), [])
    assert not verify_signature(BODY, sign_webhook(BODY, ""), [""])


def test_uppercase_hex_and_non_ascii_header_do_not_crash() -> None:
    header = sign_webhook(BODY, SECRET).upper().replace("V1=", "v1=")
    assert verify_signature(BODY, header, [SECRET])
    assert not verify_signature(BODY, "v1=ü" * 3, [SECRET])


def test_parse_secrets() -> None:
    assert parse_secrets(None) == ()
    assert parse_secrets(" a , ,b,") == ("a", "b")
    assert parse_secrets(["x", " ", "y "]) == ("x", "y")


# -- severity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "urgency", "expected"),
    [
        ("P1", "low", Severity.SEV1),
        ("P2", "high", Severity.SEV2),
        ("P3", "high", Severity.SEV3),
        ("P5", None, Severity.SEV3),
        ("sev-1", None, Severity.SEV1),
        ("SEV2", "low", Severity.SEV2),
        (None, "high", Severity.SEV1),
        (None, "low", Severity.SEV3),
        (None, None, Severity.SEV3),
        ("Business critical", "high", Severity.SEV1),  # unreadable custom name: urgency decides
    ],
)
def test_severity_from(priority: str | None, urgency: str | None, expected: Severity) -> None:
    assert severity_from(priority, urgency) is expected


def test_every_severity_has_an_events_api_severity() -> None:
    assert set(EVENT_SEVERITY) == set(Severity)
    assert set(EVENT_SEVERITY.values()) <= {"critical", "error", "warning", "info"}


# -- envelope normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(HANDLED_EVENT_TYPES))
def test_every_handled_type_has_a_fixture_that_normalises(event_type: str) -> None:
    payload = load(event_type)
    event = to_core(payload)
    assert event is not None
    assert event.event_type == event_type
    assert event.id == payload["event"]["id"]
    assert event.incident_id == "Q2K3SB1VXYZ7AB"
    assert event.occurred_at.tzinfo is not None
    assert event.html_url == "https://acme.pagerduty.com/incidents/Q2K3SB1VXYZ7AB"


def test_triggered_fields() -> None:
    event = to_core(load("incident.triggered"))
    assert event == PagerDutyEvent(
        id="01EVTRIG0000000000000000A1",
        event_type="incident.triggered",
        occurred_at=datetime(2024, 5, 14, 9, 12, 3, 512000, tzinfo=UTC),
        incident_id="Q2K3SB1VXYZ7AB",
        incident_number=4321,
        title="Checkout API error rate above 5%",
        status="triggered",
        urgency="high",
        priority=None,
        html_url="https://acme.pagerduty.com/incidents/Q2K3SB1VXYZ7AB",
        service_name="Checkout API",
        assignees=("Alice Ops",),
        escalation_policy="Checkout On-Call",
        agent="Checkout API",
        agent_type="service_reference",
        note=None,
        conference_url="https://meet.example.com/checkout",  # data.conference_bridge (issue 17)
        conference_number="+1 415-555-0100,,123456#",
    )
    assert event.severity is Severity.SEV1  # no priority, high urgency


@pytest.mark.parametrize(
    ("event_type", "status", "assignees", "agent", "severity"),
    [
        ("incident.acknowledged", "acknowledged", ("Alice Ops",), "Alice Ops", Severity.SEV1),
        ("incident.unacknowledged", "triggered", ("Alice Ops",), None, Severity.SEV1),
        ("incident.escalated", "triggered", ("Bob Builder",), None, Severity.SEV1),
        ("incident.reassigned", "triggered", ("Alice Ops", "Bob Builder"), "Bob Builder", Severity.SEV1),
        (
            "incident.priority_updated",
            "triggered",
            ("Alice Ops", "Bob Builder"),
            "Bob Builder",
            Severity.SEV1,
        ),
        ("incident.resolved", "resolved", (), "Alice Ops", Severity.SEV1),
        ("incident.reopened", "triggered", ("Bob Builder",), "Bob Builder", Severity.SEV2),
    ],
)
def test_incident_events(
    event_type: str, status: str, assignees: tuple[str, ...], agent: str | None, severity: Severity
) -> None:
    event = to_core(load(event_type))
    assert event is not None
    assert (event.status, event.assignees, event.agent, event.severity) == (
        status,
        assignees,
        agent,
        severity,
    )
    assert event.agent_type == ("user_reference" if agent else None)


def test_priority_updated_carries_priority_name() -> None:
    event = to_core(load("incident.priority_updated"))
    assert event is not None and event.priority == "P1" and event.urgency == "high"


def test_annotated_carries_the_note() -> None:
    event = to_core(load("incident.annotated"))
    assert event is not None
    assert event.note == "Rolled back checkout-api to v2024.05.13-2; error rate recovering."
    assert event.title == "[#4321] Checkout API error rate above 5%"
    assert (event.status, event.incident_number, event.service_name, event.assignees) == (
        None,
        None,
        None,
        (),
    )
    assert event.severity is Severity.SEV3  # nothing known: the service must not re-grade on a note


def test_unhandled_event_type_validates_and_is_ignored() -> None:
    payload = {
        "event": {
            "id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
            "event_type": "service.updated",
            "resource_type": "service",
            "occurred_at": "2021-03-02T13:35:11.682Z",
            "agent": None,
            "client": None,
            "data": {"id": "PF9KMXH", "type": "service", "summary": "testing service updates"},
        }
    }
    webhook = WebhookIn.model_validate(payload)
    assert not webhook.handled and webhook.to_core() is None


def test_naive_occurred_at_is_taken_as_utc() -> None:
    payload = load("incident.triggered")
    payload["event"]["occurred_at"] = "2024-05-14T09:12:03"
    event = to_core(payload)
    assert event is not None and event.occurred_at == datetime(2024, 5, 14, 9, 12, 3, tzinfo=UTC)


def _error_locations(payload: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        WebhookIn.model_validate(payload)
    return [".".join(str(p) for p in err["loc"]) for err in info.value.errors()]


def test_validation_errors_name_the_bad_field() -> None:
    payload = load("incident.acknowledged")
    payload["event"]["data"]["status"] = "snoozed"
    del payload["event"]["data"]["title"]
    locations = _error_locations(payload)
    assert "event.data.incident.status" in locations
    assert "event.data.incident.title" in locations


def test_missing_envelope_fields_are_named() -> None:
    assert "event" in _error_locations({"not_event": {}})
    payload = load("incident.resolved")
    del payload["event"]["id"]
    payload["event"]["occurred_at"] = "yesterday"
    assert {"event.id", "event.occurred_at"} <= set(_error_locations(payload))


def test_handled_type_with_wrong_data_type_is_rejected() -> None:
    payload = load("incident.triggered")
    payload["event"]["data"] = load("incident.annotated")["event"]["data"]
    with pytest.raises(ValidationError, match=re.escape("incident.triggered needs data.type 'incident'")):
        WebhookIn.model_validate(payload)


def test_the_subscription_fixture_is_not_an_event() -> None:
    subscription = json.loads((FIXTURES.parent / "incident.priority_updated.json").read_text())
    assert "event" in _error_locations(subscription)
