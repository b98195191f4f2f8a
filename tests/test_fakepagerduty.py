"""The fake PagerDuty itself, driven with plain httpx so its answers are checked independently of pdpyras."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakepagerduty import DEFAULT_TOKEN, ROUTING_KEY, FakePagerDutyServer, sign_webhook

AUTH = {"Authorization": f"Token token={DEFAULT_TOKEN}", "Accept": "application/vnd.pagerduty+json;version=2"}
WRITE = AUTH | {"From": "oncall@example.com"}
ACK = {"incident": {"type": "incident_reference", "status": "acknowledged"}}


@pytest.fixture(scope="module")
def server() -> Iterator[FakePagerDutyServer]:
    with FakePagerDutyServer() as pd:
        yield pd


@pytest.fixture
def pd(server: FakePagerDutyServer) -> FakePagerDutyServer:
    server.fake.reset()
    return server


@pytest.fixture
def http(pd: FakePagerDutyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pd.url, timeout=5) as client:
        yield client


def enqueue(http: httpx.Client, **event: Any) -> httpx.Response:
    return http.post("/v2/enqueue", json={"routing_key": ROUTING_KEY, **event})


TRIGGER = {"summary": "Disk full", "source": "db-1", "severity": "critical"}


# -- REST ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Token token=wrong", f"Bearer {DEFAULT_TOKEN}", "Token token="])
def test_rest_needs_a_known_token(pd: FakePagerDutyServer, http: httpx.Client, auth: str | None) -> None:
    pd.fake.add_incident("PINC1")
    headers = {"From": "a@example.com"} | ({"Authorization": auth} if auth else {})
    response = http.put("/incidents/PINC1", json=ACK, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Authentication failed", "code": 2006}}
    assert pd.fake.incident("PINC1")["status"] == "triggered"
    assert pd.fake.calls[0].status == 401  # recorded all the same


def test_writes_need_a_from_header_reads_do_not(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.add_incident("PINC1")
    response = http.put("/incidents/PINC1", json=ACK, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["message"], error["code"]) == ("Invalid Input Provided", 2001)
    assert '"From" header' in error["errors"][0]
    assert http.get("/incidents/PINC1", headers=AUTH).json()["incident"]["status"] == "triggered"


def test_put_incident_updates_status_and_answers_the_incident(
    pd: FakePagerDutyServer, http: httpx.Client
) -> None:
    pd.fake.add_incident("PINC1", title="Checkout down", urgency="low")
    response = http.put("/incidents/PINC1", json=ACK, headers=WRITE)
    assert response.status_code == 200
    incident = response.json()["incident"]
    assert (incident["id"], incident["status"], incident["title"], incident["urgency"]) == (
        "PINC1",
        "acknowledged",
        "Checkout down",
        "low",
    )
    assert pd.fake.incident("PINC1")["status"] == "acknowledged"
    (call,) = pd.fake.calls_to("PUT", "/incidents/")
    assert (call.body, call.header("from"), call.status) == (ACK, "oncall@example.com", 200)


def test_put_incident_errors(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    assert http.put("/incidents/PNOPE", json=ACK, headers=WRITE).json()["error"]["code"] == 2100
    pd.fake.add_incident("PINC1", "resolved")
    response = http.put("/incidents/PINC1", json=ACK, headers=WRITE)
    assert (response.status_code, response.json()["error"]["errors"]) == (400, ["Incident Already Resolved"])
    bad = {"incident": {"type": "user", "status": "snoozed"}}
    response = http.put("/incidents/PINC1", json=bad, headers=WRITE)
    assert response.status_code == 400 and len(response.json()["error"]["errors"]) == 2
    assert http.put("/incidents/PINC1", content=b"not json", headers=WRITE).status_code == 400


def test_unknown_path_is_404(http: httpx.Client) -> None:
    assert http.get("/users/me", headers=AUTH).json()["error"] == {"message": "Not Found", "code": 2100}


def test_oncalls_pagination(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.set_oncalls([pd.fake.oncall(f"PU{i}", f"User {i}") for i in range(30)])
    first = http.get("/oncalls", headers=AUTH).json()
    assert (len(first["oncalls"]), first["limit"], first["offset"], first["more"], first["total"]) == (
        25,
        25,
        0,
        True,
        None,
    )
    last = http.get("/oncalls", params={"limit": 10, "offset": 20, "total": "true"}, headers=AUTH).json()
    assert [o["user"]["id"] for o in last["oncalls"]] == [f"PU{i}" for i in range(20, 30)]
    assert (last["more"], last["total"]) == (False, 30)
    assert http.get("/oncalls", params={"limit": 0}, headers=AUTH).status_code == 400
    assert http.get("/oncalls", params={"limit": 101}, headers=AUTH).status_code == 400


def test_oncalls_users_are_references_unless_included(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.set_oncalls([pd.fake.oncall("PALICE", "Alice", "alice@example.com")])
    plain = http.get("/oncalls", headers=AUTH).json()["oncalls"][0]["user"]
    assert plain["type"] == "user_reference" and "email" not in plain
    full = http.get("/oncalls", params={"include[]": "users"}, headers=AUTH).json()["oncalls"][0]["user"]
    assert (full["type"], full["email"], full["name"]) == ("user", "alice@example.com", "Alice")


def test_oncalls_filters(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.set_oncalls(
        [
            pd.fake.oncall("PA", "A", schedule_id="PS1", escalation_policy_id="PE1"),
            pd.fake.oncall("PB", "B", schedule_id="PS2", escalation_policy_id="PE1"),
            pd.fake.oncall("PC", "C", escalation_policy_id="PE2"),
        ]
    )

    def ids(params: list[tuple[str, str]]) -> list[str]:
        return [o["user"]["id"] for o in http.get("/oncalls", params=params, headers=AUTH).json()["oncalls"]]

    assert ids([("schedule_ids[]", "PS1"), ("schedule_ids[]", "PS2")]) == ["PA", "PB"]
    assert ids([("escalation_policy_ids[]", "PE2")]) == ["PC"]
    assert ids([("escalation_policy_ids[]", "PE1"), ("user_ids[]", "PB")]) == ["PB"]
    assert ids([("schedule_ids[]", "PS9")]) == []


# -- Events API ----------------------------------------------------------------------------------------


def test_enqueue_trigger_ack_resolve(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    response = enqueue(http, event_action="trigger", dedup_key="dk", payload=TRIGGER)
    assert (response.status_code, response.json()) == (
        202,
        {"status": "success", "message": "Event processed", "dedup_key": "dk"},
    )
    assert pd.fake.alert_status(ROUTING_KEY, "dk") == "triggered"
    enqueue(http, event_action="acknowledge", dedup_key="dk")
    assert pd.fake.alert_status(ROUTING_KEY, "dk") == "acknowledged"
    enqueue(http, event_action="resolve", dedup_key="dk")
    assert pd.fake.alert_status(ROUTING_KEY, "dk") == "resolved"
    assert [e["event_action"] for e in pd.fake.received_events()] == ["trigger", "acknowledge", "resolve"]


def test_enqueue_trigger_without_dedup_key_gets_one(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    key = enqueue(http, event_action="trigger", payload=TRIGGER).json()["dedup_key"]
    assert key and pd.fake.alert_status(ROUTING_KEY, key) == "triggered"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"routing_key": "short", "event_action": "trigger", "payload": TRIGGER}, "routing_key"),
        ({"event_action": "snooze", "dedup_key": "x"}, "event_action"),
        ({"event_action": "resolve"}, "dedup_key"),
        ({"event_action": "trigger"}, "'payload' is missing"),
        ({"event_action": "trigger", "payload": {"severity": "critical"}}, "payload.summary"),
        ({"event_action": "trigger", "payload": TRIGGER | {"source": ""}}, "payload.source"),
        ({"event_action": "trigger", "payload": TRIGGER | {"severity": "sev1"}}, "payload.severity"),
    ],
)
def test_enqueue_validation(pd: FakePagerDutyServer, http: httpx.Client, event: dict, problem: str) -> None:
    response = enqueue(http, **event)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(problem in e for e in body["errors"])
    assert pd.fake.received_events() == []


def test_enqueue_rejects_non_json(http: httpx.Client) -> None:
    response = http.post("/v2/enqueue", content=b"{oops")
    assert response.status_code == 400 and response.json()["errors"] == ["JSON parse error"]


# -- faults and bookkeeping ----------------------------------------------------------------------------


def test_ratelimit_fault_in_each_api_shape(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.add_fault(method="*", mode="ratelimit", retry_after=4, count=2)
    rest = http.get("/oncalls", headers=AUTH)
    events = enqueue(http, event_action="trigger", payload=TRIGGER)
    assert (rest.status_code, rest.headers["retry-after"], rest.json()["error"]["code"]) == (429, "4", 2020)
    assert (events.status_code, events.json()["status"]) == (429, "throttle event")
    assert http.get("/oncalls", headers=AUTH).status_code == 200  # count used up
    assert [c.fault is not None for c in pd.fake.calls] == [True, True, False]
    assert pd.fake.received_events() == []  # a faulted call has no effect


def test_error500_fault_matches_its_pattern_only(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.add_incident("PINC1")
    pd.fake.add_fault(method="PUT /incidents/*", mode="error500", status=503)
    assert http.get("/incidents/PINC1", headers=AUTH).status_code == 200
    assert http.put("/incidents/PINC1", json=ACK, headers=WRITE).status_code == 503
    assert pd.fake.incident("PINC1")["status"] == "triggered"
    pd.fake.clear_faults()
    assert http.put("/incidents/PINC1", json=ACK, headers=WRITE).status_code == 200


def test_probability_fault_is_seeded(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    def run() -> list[int]:
        pd.fake.reset()
        pd.fake.add_fault(method="GET /oncalls", mode="error500", probability=0.5, seed=7)
        return [http.get("/oncalls", headers=AUTH).status_code for _ in range(20)]

    first = run()
    assert first == run() and {200, 500} == set(first)


def test_slow_fault_answers_late_and_takes_effect(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.add_incident("PINC1")
    pd.fake.add_fault(method="PUT *", mode="slow", delay=0.2, count=1)
    assert http.put("/incidents/PINC1", json=ACK, headers=WRITE).status_code == 200
    assert pd.fake.incident("PINC1")["status"] == "acknowledged"
    (call,) = pd.fake.calls
    assert (call.status, call.fault["mode"]) == (200, "slow")


def test_drop_fault_closes_the_connection(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.add_fault(method="POST /v2/enqueue", mode="drop", count=1)
    with pytest.raises(httpx.TransportError):
        enqueue(http, event_action="trigger", payload=TRIGGER)
    (call,) = pd.fake.calls
    assert (call.status, call.fault["mode"]) == (None, "drop")


def test_calls_to_and_reset(pd: FakePagerDutyServer, http: httpx.Client) -> None:
    pd.fake.add_incident("PINC1")
    http.get("/incidents/PINC1", headers=AUTH)
    http.get("/oncalls", headers=AUTH, params={"limit": 5})
    enqueue(http, event_action="trigger", payload=TRIGGER)
    assert [c.operation for c in pd.fake.calls_to("get")] == ["GET /incidents/PINC1", "GET /oncalls"]
    assert pd.fake.calls_to("GET", "/oncalls")[0].query == {"limit": ["5"]}
    assert [c.index for c in pd.fake.calls] == [0, 1, 2]
    pd.fake.reset()
    assert (pd.fake.calls, pd.fake.incident("PINC1"), pd.fake.received_events()) == ([], None, [])


def test_sign_webhook_matches_pagerduty_format() -> None:
    body = b'{"event": {}}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign_webhook(body, "secret") == f"v1={expected}"
    assert sign_webhook(body, ["secret", "other"]).split(",")[0] == f"v1={expected}"
    assert len(sign_webhook(body, ["secret", "other"]).split(",")) == 2
