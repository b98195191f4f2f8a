"""`PagerDutyClient` (pdpyras underneath) and `OnCallCache` against the fake PagerDuty over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from bot.core.pagerduty import OnCallEntry
from bot.integrations.oncall_cache import OnCallCache
from bot.integrations.pagerduty import PagerDutyCallError, PagerDutyClient
from tests.fakepagerduty import DEFAULT_TOKEN, ROUTING_KEY, FakePagerDutyServer

FROM = "incidentbot@example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[FakePagerDutyServer]:
    with FakePagerDutyServer() as pd:
        yield pd


@pytest.fixture
def pd(server: FakePagerDutyServer) -> FakePagerDutyServer:
    server.fake.reset()
    return server


@pytest.fixture
def client(pd: FakePagerDutyServer) -> Iterator[PagerDutyClient]:
    c = PagerDutyClient(DEFAULT_TOKEN, FROM, pd.url, pd.events_url, timeout=5)
    yield c
    c.close()


def failure(call: Callable[[], object]) -> PagerDutyCallError:
    with pytest.raises(PagerDutyCallError) as info:
        call()
    return info.value


# -- REST: incidents -----------------------------------------------------------------------------------


def test_acknowledge_and_resolve_send_from_header_and_reference_body(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    pd.fake.add_incident("PINC001")
    assert client.acknowledge("PINC001") == "acknowledged"
    assert pd.fake.incident("PINC001")["status"] == "acknowledged"
    assert client.resolve("PINC001") == "resolved"
    calls = pd.fake.calls_to("PUT", "/incidents/PINC001")
    assert [c.body for c in calls] == [
        {"incident": {"type": "incident_reference", "status": "acknowledged"}},
        {"incident": {"type": "incident_reference", "status": "resolved"}},
    ]
    assert {c.header("From") for c in calls} == {FROM}
    assert {c.header("Authorization") for c in calls} == {f"Token token={DEFAULT_TOKEN}"}


def test_resolve_is_idempotent_but_acknowledging_a_resolved_incident_is_not(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    pd.fake.add_incident("PINC002", "resolved")
    assert client.resolve("PINC002") == "resolved"
    error = failure(lambda: client.acknowledge("PINC002"))
    assert (error.status, error.recoverable) == (400, False)
    assert "Incident Already Resolved" in error.error


def test_bad_token_is_not_recoverable(pd: FakePagerDutyServer) -> None:
    pd.fake.add_incident("PINC003")
    bad = PagerDutyClient("wrong-token", FROM, pd.url, pd.events_url)
    error = failure(lambda: bad.acknowledge("PINC003"))
    assert (error.status, error.recoverable, error.retry_after) == (401, False, None)
    assert pd.fake.incident("PINC003")["status"] == "triggered"


def test_missing_token_is_not_recoverable(pd: FakePagerDutyServer) -> None:
    pd.fake.add_incident("PINC003")
    no_token = PagerDutyClient("", FROM, pd.url, pd.events_url)
    for call in (lambda: no_token.acknowledge("PINC003"), no_token.oncalls):
        error = failure(call)
        assert (error.status, error.recoverable) == (None, False)
        assert "PAGERDUTY_API_TOKEN" in error.error
    assert pd.fake.calls == []
    assert no_token.acknowledge_event(ROUTING_KEY, "k0") == "k0"  # the Events API needs no token
    assert not failure(lambda: no_token.resolve_event("", "k0")).recoverable


def test_missing_from_email_is_a_clear_non_recoverable_error(pd: FakePagerDutyServer) -> None:
    pd.fake.add_incident("PINC004")
    error = failure(lambda: PagerDutyClient(DEFAULT_TOKEN, "", pd.url, pd.events_url).resolve("PINC004"))
    assert (error.status, error.recoverable) == (400, False)
    assert '"From" header' in error.error


def test_unknown_incident_is_not_recoverable(client: PagerDutyClient) -> None:
    error = failure(lambda: client.acknowledge("PNOPE"))
    assert (error.status, error.recoverable) == (404, False)


def test_429_is_recoverable_with_retry_after_and_not_retried_by_pdpyras(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    pd.fake.add_incident("PINC005")
    pd.fake.add_fault(method="PUT /incidents/*", mode="ratelimit", retry_after=7, count=1)
    error = failure(lambda: client.acknowledge("PINC005"))
    assert (error.status, error.recoverable, error.retry_after) == (429, True, 7.0)
    assert len(pd.fake.calls_to("PUT", "/incidents/")) == 1  # the outbox retries, not pdpyras
    assert client.acknowledge("PINC005") == "acknowledged"


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_recoverable(pd: FakePagerDutyServer, client: PagerDutyClient, status: int) -> None:
    pd.fake.add_incident("PINC006")
    pd.fake.add_fault(method="PUT /incidents/PINC006", mode="error500", status=status, count=1)
    error = failure(lambda: client.resolve("PINC006"))
    assert (error.status, error.recoverable, error.retry_after) == (status, True, None)
    assert len(pd.fake.calls) == 1


def test_dropped_connection_is_recoverable(pd: FakePagerDutyServer, client: PagerDutyClient) -> None:
    pd.fake.add_incident("PINC007")
    pd.fake.add_fault(method="*", mode="drop", count=1)
    error = failure(lambda: client.acknowledge("PINC007"))
    assert (error.status, error.recoverable) == (None, True)
    assert "network" in error.error


def test_unreachable_host_is_recoverable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    c = PagerDutyClient(
        DEFAULT_TOKEN, FROM, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v2/enqueue"
    )
    assert failure(lambda: c.acknowledge("PINC008")).recoverable
    assert failure(lambda: c.trigger_event(ROUTING_KEY, "k", "s", "critical", "src")).recoverable


def test_slow_answer_past_timeout_is_recoverable(pd: FakePagerDutyServer) -> None:
    pd.fake.add_incident("PINC009")
    pd.fake.add_fault(method="*", mode="slow", delay=1.0, count=1)
    c = PagerDutyClient(DEFAULT_TOKEN, FROM, pd.url, pd.events_url, timeout=0.2)
    assert failure(lambda: c.acknowledge("PINC009")).recoverable


# -- REST: on-calls ------------------------------------------------------------------------------------


def test_oncalls_follow_pagination_and_include_emails(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    pd.fake.set_oncalls([pd.fake.oncall(f"PU{i:03}", f"User {i}", level=1 + i % 3) for i in range(230)])
    entries = client.oncalls()
    assert len(entries) == 230
    assert entries[5] == OnCallEntry(
        escalation_level=3,
        user_id="PU005",
        user_summary="User 5",
        user_email="pu005@example.com",
        start=None,
        end=None,
        schedule_id=None,
        escalation_policy_id="PEP0001",
    )
    calls = pd.fake.calls_to("GET", "/oncalls")
    assert [c.query["offset"] for c in calls] == [["0"], ["100"], ["200"]]
    assert all(c.query["include[]"] == ["users"] for c in calls)


def test_oncalls_filter_by_schedule_and_policy(pd: FakePagerDutyServer, client: PagerDutyClient) -> None:
    pd.fake.set_oncalls(
        [
            pd.fake.oncall(
                "PALICE",
                "Alice",
                "alice@example.com",
                schedule_id="PSCHED1",
                escalation_policy_id="PEPA",
                start="2024-05-14T09:00:00Z",
                end="2024-05-21T09:00:00Z",
            ),
            pd.fake.oncall("PBOB", "Bob", schedule_id="PSCHED2", escalation_policy_id="PEPA", level=2),
            pd.fake.oncall("PCAROL", "Carol", escalation_policy_id="PEPB"),
        ]
    )
    (alice,) = client.oncalls(schedule_id="PSCHED1")
    assert (alice.user_email, alice.schedule_id) == ("alice@example.com", "PSCHED1")
    assert alice.start == datetime(2024, 5, 14, 9, tzinfo=UTC)
    assert alice.end == datetime(2024, 5, 21, 9, tzinfo=UTC)
    assert [e.user_id for e in client.oncalls(escalation_policy_id="PEPA")] == ["PALICE", "PBOB"]
    assert pd.fake.calls_to("GET", "/oncalls")[-1].query["escalation_policy_ids[]"] == ["PEPA"]
    assert client.oncalls(schedule_id="PNONE") == []


def test_oncalls_failure_mid_pagination_is_recoverable(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    pd.fake.set_oncalls([pd.fake.oncall(f"PU{i}", f"U{i}") for i in range(150)])
    pd.fake.add_fault(method="GET /oncalls", mode="error500", after=1, count=1)
    assert failure(client.oncalls).recoverable


# -- Events API v2 -------------------------------------------------------------------------------------


def test_events_trigger_acknowledge_resolve_with_dedup_key(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    links = [{"href": "https://bot.example.com/incidents/7", "text": "Incident #7"}]
    assert (
        client.trigger_event(ROUTING_KEY, "inc-7", "Checkout down", "critical", "incidentbot", links)
        == "inc-7"
    )
    assert pd.fake.alert_status(ROUTING_KEY, "inc-7") == "triggered"
    assert client.acknowledge_event(ROUTING_KEY, "inc-7") == "inc-7"
    assert pd.fake.alert_status(ROUTING_KEY, "inc-7") == "acknowledged"
    assert client.resolve_event(ROUTING_KEY, "inc-7") == "inc-7"
    assert pd.fake.alert_status(ROUTING_KEY, "inc-7") == "resolved"
    trigger, ack, resolve = pd.fake.received_events()
    assert trigger["payload"] == {"summary": "Checkout down", "source": "incidentbot", "severity": "critical"}
    assert trigger["links"] == links and trigger["routing_key"] == ROUTING_KEY
    assert (ack["event_action"], resolve["event_action"]) == ("acknowledge", "resolve")
    assert all(c.header("Authorization") is None for c in pd.fake.calls_to("POST", "/v2/enqueue"))


def test_events_url_may_be_the_host_only(pd: FakePagerDutyServer) -> None:
    c = PagerDutyClient(DEFAULT_TOKEN, FROM, pd.url, pd.url + "/")
    assert c.acknowledge_event(ROUTING_KEY, "k1") == "k1"


def test_events_bad_routing_key_is_not_recoverable(client: PagerDutyClient) -> None:
    error = failure(lambda: client.trigger_event("too-short", "k", "s", "critical", "src"))
    assert (error.status, error.recoverable) == (400, False)
    assert "routing_key" in error.error


def test_events_429_and_500_are_recoverable_and_not_retried(
    pd: FakePagerDutyServer, client: PagerDutyClient
) -> None:
    pd.fake.add_fault(method="POST /v2/enqueue", mode="ratelimit", retry_after=2, count=1)
    error = failure(lambda: client.resolve_event(ROUTING_KEY, "k2"))
    assert (error.status, error.recoverable, error.retry_after) == (429, True, 2.0)
    pd.fake.add_fault(method="POST /v2/enqueue", mode="error500", count=1)
    error = failure(lambda: client.trigger_event(ROUTING_KEY, "k2", "s", "error", "src"))
    assert (error.status, error.recoverable) == (500, True)
    assert len(pd.fake.calls) == 2  # pdpyras's own 5xx retries are off


# -- on-call cache -------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_oncall_cache_ttl_and_stale_fallback(pd: FakePagerDutyServer, client: PagerDutyClient) -> None:
    pd.fake.set_oncalls([pd.fake.oncall("PALICE", "Alice", schedule_id="PS1")])
    clock = Clock()
    cache = OnCallCache(client, ttl=60, clock=clock)
    entries, stale = cache.get(schedule_id="PS1")
    assert ([e.user_id for e in entries], stale) == (["PALICE"], False)

    pd.fake.set_oncalls([pd.fake.oncall("PBOB", "Bob", schedule_id="PS1")])
    clock.now += 59
    assert [e.user_id for e in cache.get(schedule_id="PS1")[0]] == ["PALICE"]  # cached
    assert len(pd.fake.calls_to("GET", "/oncalls")) == 1

    clock.now += 2
    assert [e.user_id for e in cache.get(schedule_id="PS1")[0]] == ["PBOB"]  # refreshed after the ttl

    pd.fake.add_fault(method="GET /oncalls", mode="error500")
    clock.now += 61
    entries, stale = cache.get(schedule_id="PS1")
    assert ([e.user_id for e in entries], stale) == (["PBOB"], True)  # last known value

    pd.fake.clear_faults()
    assert cache.get(schedule_id="PS1")[1] is False


def test_oncall_cache_without_a_known_value_raises(pd: FakePagerDutyServer, client: PagerDutyClient) -> None:
    pd.fake.add_fault(method="GET /oncalls", mode="error500")
    assert failure(lambda: OnCallCache(client, clock=Clock()).get(escalation_policy_id="PEP1")).recoverable


def test_oncall_cache_raises_non_recoverable_errors_even_with_a_known_value(pd: FakePagerDutyServer) -> None:
    pd.fake.set_oncalls([pd.fake.oncall("PALICE", "Alice")])
    clock = Clock()
    cache = OnCallCache(PagerDutyClient(DEFAULT_TOKEN, FROM, pd.url, pd.events_url), clock=clock)
    cache.get()
    pd.fake.tokens.clear()  # token revoked
    clock.now += 120
    assert failure(cache.get).status == 401


def test_importing_the_integration_raises_no_deprecation_warning() -> None:
    code = "import warnings; warnings.simplefilter('error'); import bot.integrations.pagerduty"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
