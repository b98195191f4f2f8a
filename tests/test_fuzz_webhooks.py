"""Hostile and broken input: fuzz every endpoint; no 5xx, no crash, no partial write.

* The webhooks are fuzzed with schemathesis from the app's own OpenAPI schema (`/openapi.json`), over
  real HTTP against the running app: schema-valid payloads (positive) and schema-violating ones
  (negative), each sent twice: unauthenticated first (must be 401, whatever the body) and then with
  valid credentials (the bearer token; for PagerDuty an `X-PagerDuty-Signature` computed over the exact
  bytes sent), so the fuzz reaches validation and the use cases instead of bouncing off the 401.
* `/slack/events` is not in the schema (Bolt parses it); hypothesis generates correctly signed form
  bodies, interactive payloads, event callbacks and slash command texts.
* After each run the database is checked for partial writes: every incident was named by an accepted
  (2xx) answer, has its channel name, its opening timeline entry and its outbox rows; no row points at
  a missing incident. And the bot still answers and still opens incidents.

Examples per endpoint: FUZZ_EXAMPLES (default 50) in CI; the `slow` variants (`make chaos`) run
FUZZ_SLOW_EXAMPLES (default 1000). PostgreSQL gets a quarter of either.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session, col, func, select

from bot.settings import Settings
from bot.store.tables import Alert, Incident, Outbox, Page, RunbookPost, TimelineEntry, Timer, WebhookReceipt
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import (
    AM_TOKEN,
    block_action_body,
    post_alertmanager,
    processed,
    slack_headers,
    slash_command_body,
    trigger_id,
    wait_until,
)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
FUZZ_SLOW_EXAMPLES = int(os.environ.get("FUZZ_SLOW_EXAMPLES", "1000"))
SIZES = pytest.mark.parametrize(
    "examples",
    [
        pytest.param(FUZZ_EXAMPLES, id="ci"),
        pytest.param(FUZZ_SLOW_EXAMPLES, id="long", marks=pytest.mark.slow),
    ],
)
FIXTURES = Path(__file__).parent / "fixtures"
AM_FIXTURE = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
WEBHOOKS = ("/webhooks/alertmanager", "/webhooks/pagerduty")
# What a webhook may answer to anything at all: never a 5xx (503 only while the database is down).
WEBHOOK_STATUSES = {200, 202, 400, 401, 413, 422}  # 202: stored in the inbox; 200: ignored
BODY_LIMITS: dict[str, int] = {
    "/webhooks/alertmanager": Settings.model_fields["alertmanager_max_body_bytes"].default,
    "/webhooks/pagerduty": Settings.model_fields["max_body_bytes"].default,
}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


def effective(bot, examples: int) -> int:
    """`examples` on SQLite; a quarter of them on PostgreSQL (its own failure modes, e.g. NUL
    characters, show up quickly), to keep CI's run short."""
    return max(10, examples // 4) if bot.ctx.engine.dialect.name == "postgresql" else examples


def fuzz_settings(bot, examples: int) -> settings:
    return settings(
        max_examples=effective(bot, examples),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        # No "explain" phase: it traces every line of every thread (the bot's included) and can take
        # minutes against a live server. Shrinking stays: a failure is reported minimal.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )


@pytest.fixture
def bot(start_bot):
    return start_bot()


# -- the schema ----------------------------------------------------------------------------------------


def openapi(bot) -> dict[str, Any]:
    r = httpx.get(f"{bot.url}/openapi.json", timeout=10)
    assert r.status_code == 200
    return r.json()


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolves(doc: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_schema_describes_the_webhooks_and_hides_slack(bot):
    doc = openapi(bot)
    assert doc["openapi"].startswith("3.")
    assert set(WEBHOOKS) <= set(doc["paths"])
    assert "/slack/events" not in doc["paths"] and "/metrics" not in doc["paths"]
    for path in WEBHOOKS:
        operation = doc["paths"][path]["post"]
        body = operation["requestBody"]
        assert body["required"] is True and "application/json" in body["content"]
        assert "401" in operation["responses"] and "503" in operation["responses"]
    # schemathesis sees the request bodies (with a dangling $ref it silently drops them).
    schema = schemathesis.openapi.from_dict(doc)
    for path in WEBHOOKS:
        assert list(schema[path]["POST"].body), path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_references_resolve(bot):
    doc = openapi(bot)
    dangling = sorted({ref for ref in refs(doc) if not resolves(doc, ref)})
    assert not dangling, dangling


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_documents_every_status_the_webhooks_answer(start_bot):
    bot = start_bot(max_body_bytes=4096)
    doc = openapi(bot)
    undocumented = []
    for path in WEBHOOKS:
        for body in (b"{", b'{"version": "4"}', b"[" + b" " * 5000 + b"]"):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {AM_TOKEN}"}
            headers["X-PagerDuty-Signature"] = sign_webhook(body, PD_WEBHOOK_SECRETS[0])
            status = httpx.post(f"{bot.url}{path}", content=body, headers=headers, timeout=10).status_code
            if str(status) not in doc["paths"][path]["post"]["responses"]:
                undocumented.append((path, status))
    assert not undocumented, undocumented


# -- partial writes --------------------------------------------------------------------------------------


def assert_no_partial_writes(bot, accepted_incidents: set[int]) -> None:
    """Every incident comes from an accepted request and was written whole; nothing is orphaned."""
    with Session(bot.ctx.engine) as session:
        incidents = session.exec(select(Incident)).all()
        ids = {i.id for i in incidents}
        assert ids <= accepted_incidents, f"incidents no 2xx answer named: {ids - accepted_incidents}"
        for incident in incidents:
            assert incident.channel_name, incident
            assert incident.source in ("alertmanager", "pagerduty", "manual"), incident
            opened = session.exec(
                select(func.count())
                .select_from(TimelineEntry)
                .where(col(TimelineEntry.incident_id) == incident.id, col(TimelineEntry.kind) == "opened")
            ).one()
            assert opened >= 1, f"incident {incident.id} has no 'opened' timeline entry"
            outbox = session.exec(
                select(func.count()).select_from(Outbox).where(col(Outbox.incident_id) == incident.id)
            ).one()
            assert outbox >= 1, f"incident {incident.id} enqueued no Slack work (its channel never comes)"
            if incident.source == "alertmanager":
                alerts = session.exec(
                    select(func.count()).select_from(Alert).where(col(Alert.incident_id) == incident.id)
                ).one()
                assert alerts >= 1, f"incident {incident.id} from Alertmanager has no alert rows"
        open_keys = [i.open_key for i in incidents if i.open_key]
        assert len(open_keys) == len(set(open_keys))
        for table in (Alert, TimelineEntry, Page, RunbookPost, Timer, Outbox):
            orphans = session.exec(
                select(func.count())
                .select_from(table)
                .where(col(table.incident_id).is_not(None), col(table.incident_id).not_in(ids or {-1}))
            ).one()
            assert orphans == 0, f"{orphans} {table.__name__} rows point at a missing incident"


def assert_still_serving(bot) -> None:
    assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{bot.url}/readyz", timeout=5).status_code == 200
    fresh = json.loads(json.dumps(AM_FIXTURE))
    fresh["groupKey"] = f"after-fuzz-{time.time_ns()}"
    r = post_alertmanager(bot.url, fresh)
    assert r.status_code == 202 and processed(bot, r)["decision"] == "first notification", r.text


# -- schemathesis against the webhooks -------------------------------------------------------------------


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def has_lone_surrogate(data: Any) -> bool:
    """JSON allows `"\\ud800"`; Python decodes it to a str that cannot be encoded as UTF-8."""
    for text in strings_in(data):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def has_duplicate_fingerprints(data: Any) -> bool:
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list):
        return False
    prints = [
        a.get("fingerprint") for a in alerts if isinstance(a, dict) and isinstance(a.get("fingerprint"), str)
    ]
    return len(prints) != len(set(prints))


def fuzz_webhook(
    bot, path: str, credentials: Callable[[bytes], dict[str, str]], examples: int
) -> dict[str, Any]:
    """Run schemathesis' positive and negative cases against `path`; returns what happened."""
    schema = schemathesis.openapi.from_dict(openapi(bot))
    operation = schema[path]["POST"]
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )
    seen: dict[str, Any] = {"statuses": {}, "incidents": set()}
    session = requests.Session()

    @fuzz_settings(bot, examples)
    @given(case=cases)
    def run(case) -> None:
        kwargs = case.as_transport_kwargs(base_url=bot.url)
        request = requests.Request(
            method=kwargs["method"],
            url=kwargs["url"],
            headers=kwargs.get("headers"),
            params=kwargs.get("params"),
            cookies=kwargs.get("cookies"),
            json=kwargs.get("json"),
            data=kwargs.get("data"),
        ).prepare()
        raw = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        # Unauthenticated, the same bytes are refused before they are looked at (an oversized body
        # is refused by its declared length even before the token is).
        anonymous = session.send(request, timeout=10)
        refused = 413 if len(raw) > BODY_LIMITS[path] else 401
        assert anonymous.status_code == refused, (anonymous.status_code, len(raw), anonymous.text[:300])
        # Then with credentials over these exact bytes.
        request.headers.update(credentials(raw))
        response = session.send(request, timeout=10)
        status = response.status_code
        seen["statuses"][status] = seen["statuses"].get(status, 0) + 1
        case.validate_response(response, checks=CHECKS)
        assert status in WEBHOOK_STATUSES, (status, response.text[:500])
        if status == 202:  # stored: the drain must apply it (a row it cannot apply is a bug)
            row = processed(bot, response)
            assert row["status"] == "done", (row, raw[:500])
            if row["incident"] is not None:
                seen["incidents"].add(row["incident"])

    run()
    return seen


def assert_accepted_and_rejected(statuses: dict[int, int], examples: int) -> None:
    """The fuzz reached both sides of validation (on the short PostgreSQL runs, rejection is enough)."""
    assert statuses.get(400, 0) + statuses.get(422, 0) > 0, f"no generated payload was rejected: {statuses}"
    if examples >= 40:
        accepted = statuses.get(200, 0) + statuses.get(202, 0)  # 200: a PagerDuty type it ignores
        assert accepted > 0, f"no generated payload was accepted: {statuses}"


def bearer(_: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {AM_TOKEN}"}


def signed(raw: bytes) -> dict[str, str]:
    return {"X-PagerDuty-Signature": sign_webhook(raw, PD_WEBHOOK_SECRETS[1])}


@SIZES
def test_fuzz_alertmanager_webhook_from_the_openapi_schema(bot, examples):
    seen = fuzz_webhook(bot, "/webhooks/alertmanager", bearer, examples)
    assert_accepted_and_rejected(seen["statuses"], effective(bot, examples))
    assert_no_partial_writes(bot, seen["incidents"])
    assert_still_serving(bot)


@SIZES
def test_fuzz_pagerduty_webhook_from_the_openapi_schema(bot, examples):
    seen = fuzz_webhook(bot, "/webhooks/pagerduty", signed, examples)
    assert_accepted_and_rejected(seen["statuses"], effective(bot, examples))
    assert_no_partial_writes(bot, seen["incidents"])
    with Session(bot.ctx.engine) as session:
        receipts = session.exec(select(func.count()).select_from(WebhookReceipt)).one()
    assert receipts <= seen["statuses"].get(202, 0)
    assert_still_serving(bot)


# -- hypothesis: PagerDuty events the bot acts on ----------------------------------------------------------

HANDLED = [
    "incident.triggered",
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.resolved",
    "incident.reopened",
    "incident.escalated",
    "incident.reassigned",
    "incident.priority_updated",
    "incident.annotated",
]
ANY_TEXT = st.text(max_size=80)
NASTY_TEXT = st.one_of(
    ANY_TEXT,
    st.sampled_from(["", " ", "<!channel>", "\x00", "\u202e", "🔥" * 50, "x" * 5000, "null", "../../etc"]),
)
REFERENCE = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20), "type": ANY_TEXT},
    optional={"summary": st.one_of(st.none(), NASTY_TEXT), "html_url": st.one_of(st.none(), ANY_TEXT)},
)
TIMESTAMP = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(
        ["2024-05-14T09:12:03.512Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "not a date"]
    ),
)
INCIDENT_IDS = st.sampled_from(["QFUZZ1", "QFUZZ2", "QFUZZ3"])  # few, so events land on known incidents


def incident_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "type": st.just("incident"),
            "id": INCIDENT_IDS,
            "number": st.integers(min_value=-(2**63), max_value=2**63),
            "title": NASTY_TEXT,
            "status": st.sampled_from(["triggered", "acknowledged", "resolved"]),
            "urgency": st.sampled_from(["high", "low"]),
            "html_url": ANY_TEXT,
            "service": REFERENCE,
        },
        optional={
            "assignees": st.lists(REFERENCE, max_size=3),
            "escalation_policy": st.one_of(st.none(), REFERENCE),
            "priority": st.one_of(st.none(), REFERENCE),
            "incident_key": st.one_of(
                st.none(), st.sampled_from(["incidentbot-1", "incidentbot-x"]), ANY_TEXT
            ),
        },
    )


def note_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "type": st.just("incident_note"),
            "id": st.text(min_size=1, max_size=20),
            "content": NASTY_TEXT,
            "incident": st.fixed_dictionaries({"id": INCIDENT_IDS, "type": st.just("incident_reference")}),
        },
        optional={"trimmed": st.booleans()},
    )


PD_EVENTS = st.builds(
    lambda event_type, event_id, occurred_at, agent, incident, note: {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": agent,
            "data": note if event_type == "incident.annotated" else incident,
        }
    },
    st.sampled_from(HANDLED),
    st.text(min_size=1, max_size=30),
    TIMESTAMP,
    st.one_of(st.none(), REFERENCE),
    incident_data(),
    note_data(),
)


@SIZES
def test_fuzz_pagerduty_events_the_bot_acts_on(bot, examples):
    """Schema-driven fuzzing rarely hits a handled event type with matching data; this does, with
    hostile titles, notes and names, on a handful of incident ids so that events meet known incidents."""
    statuses: dict[int, int] = {}
    accepted: set[int] = set()

    @fuzz_settings(bot, examples)
    @given(payload=PD_EVENTS, webhook_id=st.one_of(st.none(), st.text(max_size=300)))
    def run(payload: dict[str, Any], webhook_id: str | None) -> None:
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **signed(raw)}
        if webhook_id is not None and webhook_id.isprintable() and webhook_id.isascii():
            headers["X-Webhook-Id"] = webhook_id.strip()
        r = httpx.post(f"{bot.url}/webhooks/pagerduty", content=raw, headers=headers, timeout=10)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code in WEBHOOK_STATUSES, (r.status_code, r.text[:500], raw[:500])
        if r.status_code == 202:
            row = processed(bot, r)
            assert row["status"] == "done", (row, raw[:500])
            if row["incident"] is not None:
                accepted.add(row["incident"])

    run()
    assert statuses.get(202, 0) > 0, statuses
    assert_no_partial_writes(bot, accepted)
    assert_still_serving(bot)


# -- hypothesis: /slack/events ---------------------------------------------------------------------------

SUBCOMMANDS = [
    "declare",
    "list",
    "ack",
    "resolve",
    "reopen",
    "close",
    "status",
    "sev",
    "lead",
    "note",
    "action",
    "escalate",
    "page",
    "timeline",
    "runbook",
    "postmortem",
    "help",
    "",
]
ACTION_IDS = [
    "incident_ack",
    "incident_escalate",
    "incident_resolve",
    "incident_silence_1h",
    "incident_silence_24h",
    "runbook_step_done",
    "runbook_step",
    "unknown_action",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
VALUES = st.one_of(
    st.sampled_from(["1", "1:3600", "0", "-1", "1:x", "999999999999999999999", "", ":", "1:2:3"]),
    st.text(max_size=40),
)


def slash_bodies(channel: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    text = st.one_of(
        st.builds(lambda sub, rest: f"{sub} {rest}".strip(), st.sampled_from(SUBCOMMANDS), NASTY_TEXT),
        NASTY_TEXT,
    )

    def build(command: str, text: str, user: str, channel: str) -> bytes:
        # A fresh trigger_id each time, like Slack (a reused one is a replay, answered with nothing);
        # a refused modal is its own test (test_declare_modal_slack_refuses_is_not_a_listener_crash).
        return slash_command_body(command, text, user=user, channel=channel)

    return st.builds(
        build,
        st.sampled_from(["/incident", "/oncall", "/unknown"]),
        text,
        st.sampled_from(["U01ALEX", "U0NOBODY", ""]),
        channel,
    )


def action_bodies(channel: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    def build(action_id: str, value: str, user: Any, channel: str, extra: dict[str, Any]) -> bytes:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": "T0TEAM"},
            "user": user,
            "api_app_id": "A0APP",
            "token": "x",
            "trigger_id": trigger_id(),  # fresh, like Slack's: a reused one is a replay
            "container": {"type": "message", "channel_id": channel, "message_ts": "1.0"},
            "channel": {"id": channel},
            "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
            **extra,
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    return st.builds(
        build,
        st.sampled_from(ACTION_IDS),
        VALUES,
        st.sampled_from([{"id": "U01ALEX"}, {"id": "U0NOBODY"}]),
        channel,
        st.dictionaries(
            st.sampled_from(["message", "state", "view", "response_url"]), JSON_VALUES, max_size=2
        ),
    )


def view_bodies() -> st.SearchStrategy[bytes]:
    def build(title: Any, severity: Any, description: Any, rotation: Any) -> bytes:
        values: dict[str, Any] = {
            "title": {"title": {"type": "plain_text_input", "value": title}},
            "severity": {"severity": {"type": "static_select", "selected_option": {"value": severity}}},
            "description": {"description": {"type": "plain_text_input", "value": description}},
        }
        if rotation is not None:
            values["rotation"] = {
                "rotation": {"type": "static_select", "selected_option": {"value": rotation}}
            }
        payload = {
            "type": "view_submission",
            "team": {"id": "T0TEAM"},
            "user": {"id": "U01ALEX"},
            "api_app_id": "A0APP",
            "token": "x",
            "trigger_id": trigger_id(),
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": "declare_incident",
                "state": {"values": values},
            },
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    return st.builds(
        build,
        st.one_of(st.none(), NASTY_TEXT),
        st.sampled_from(["SEV1", "SEV2", "SEV3"]),
        st.one_of(st.none(), NASTY_TEXT),
        st.one_of(st.none(), st.sampled_from(["platform", ""])),  # the select offers known rotations only
    )


def event_bodies(channel: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    event = st.builds(
        lambda kind, channel, fields: {"type": kind, "channel_id": channel, "user": "U01ALEX", **fields},
        st.sampled_from(["pin_added", "reaction_added", "message", "app_mention", "channel_archive", "nope"]),
        channel,
        st.fixed_dictionaries(
            {},
            optional={
                "item": st.one_of(
                    JSON_VALUES,
                    st.fixed_dictionaries(
                        {"type": st.sampled_from(["message", "file"]), "channel": channel},
                        optional={
                            "ts": st.sampled_from(["1.0", "x", "", "1e400", "-5"]),
                            "message": st.fixed_dictionaries(
                                {"ts": st.sampled_from(["1732400000.000100", "nan", "1e400"])},
                                optional={"text": NASTY_TEXT, "user": st.text(max_size=10)},
                            ),
                        },
                    ),
                ),
                "reaction": st.sampled_from(["pushpin", "+1"]),
                "text": NASTY_TEXT,
            },
        ),
    )
    envelope = st.builds(
        lambda event, event_id: {
            "token": "x",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1,
            "event": event,
        },
        event,
        st.text(min_size=1, max_size=12),
    )
    other = st.one_of(
        st.builds(lambda c: {"type": "url_verification", "challenge": c, "token": "x"}, st.text(max_size=40)),
        st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5),
        JSON_VALUES,
    )
    return st.one_of(envelope, other).map(lambda doc: json.dumps(doc).encode())


def raw_bodies() -> st.SearchStrategy[tuple[bytes, str]]:
    forms = st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=6).map(
        lambda d: urlencode(d).encode()
    )
    payload_forms = JSON_VALUES.map(lambda v: urlencode({"payload": json.dumps(v)}).encode())
    garbage = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"payload=", b"payload=%7B", b"payload=null", b"command=/incident", b"ssl_check=1"]),
    )
    content_types = st.sampled_from(
        ["application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data", ""]
    )
    return st.tuples(st.one_of(forms, payload_forms, garbage), content_types)


@SIZES
def test_fuzz_slack_events_signed_bodies(bot, fake_slack, caplog, request, examples):
    """Correctly signed, arbitrary requests to /slack/events: never a 5xx, no listener crash, and the
    bot keeps working."""
    # An incident channel to aim at, so subcommands and buttons reach real incidents.
    r = post_alertmanager(bot.url, AM_FIXTURE)
    assert r.status_code == 202
    channel_id = wait_until(
        lambda: next((c.id for c in fake_slack.fake.channels.values() if c.name.startswith("inc-")), None),
        15,
        what="incident channel",
    )
    channels = st.sampled_from([channel_id, "C0GENERAL", "", "D0DM"])
    requests_ = st.one_of(
        slash_bodies(channels).map(lambda b: (b, "application/x-www-form-urlencoded")),
        action_bodies(channels).map(lambda b: (b, "application/x-www-form-urlencoded")),
        view_bodies().map(lambda b: (b, "application/x-www-form-urlencoded")),
        event_bodies(channels).map(lambda b: (b, "application/json")),
        raw_bodies(),
    )
    statuses: dict[int, int] = {}
    caplog.set_level(logging.ERROR)
    # uvicorn's loggers may not propagate to the root (the fake Slack's server configures them): listen
    # to them directly, so "Exception in ASGI application" is seen too.
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(caplog.handler)
    request.addfinalizer(lambda: uvicorn_logger.removeHandler(caplog.handler))

    @fuzz_settings(bot, examples)
    @given(sent=requests_)
    def run(sent: tuple[bytes, str]) -> None:
        body, content_type = sent
        headers = slack_headers(body, content_type=content_type)
        if not content_type:
            del headers["Content-Type"]
        r = httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (r.status_code, body[:300], r.text[:300])

    run()
    assert statuses.get(200, 0) > 0, statuses
    time.sleep(1)  # listeners run after the ack: give the last ones time to fail, if they do
    # A crash is an exception logged with its traceback by a listener (or Bolt around it); an outbox
    # row failing for good (`no_user` for a made-up user) is a recorded outcome, not a crash.
    crashes = [
        f"{rec.name}: {rec.getMessage()[:200]}"
        for rec in caplog.records
        if rec.levelno >= logging.ERROR and rec.exc_info and rec.name.startswith(("bot.slack", "slack_bolt"))
    ]
    assert not crashes, crashes
    help_body = slash_command_body("/incident", "help")
    r = httpx.post(f"{bot.url}/slack/events", content=help_body, headers=slack_headers(help_body), timeout=10)
    assert r.status_code == 200 and "/incident declare" in r.json()["text"]
    assert_still_serving(bot)


def post_three_ways(bot, body: bytes, content_type: str) -> dict[str, int]:
    """The body unsigned, forged (a fresh timestamp, a made-up signature) and correctly signed."""
    forged = slack_headers(body, secret="guessed", content_type=content_type)
    variants = {
        "unsigned": {"Content-Type": content_type},
        "forged": forged,
        "signed": slack_headers(body, content_type=content_type),
    }
    return {
        name: httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10).status_code
        for name, headers in variants.items()
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slack_events_malformed_body_is_4xx_not_500(bot):
    """Bolt parses a body into a dict before it verifies anything; the bot verifies first and turns
    whatever Bolt still raises on into a 400."""
    answers = {}
    for body, content_type in [
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b"{", "application/json"),
        (b"{", "text/plain"),
        (b"payload=null", "application/x-www-form-urlencoded"),
        (b"payload=%7B", "application/x-www-form-urlencoded"),
        # Well-formed, but a field Bolt reads is null: it raises while logging the unhandled request.
        (
            urlencode(
                {
                    "payload": json.dumps(
                        {"type": "block_actions", "actions": [{"action_id": "x"}], "message": None}
                    )
                }
            ).encode(),
            "application/x-www-form-urlencoded",
        ),
    ]:
        for how, status in post_three_ways(bot, body, content_type).items():
            answers[(body[:40], how)] = status
    assert httpx.get(f"{bot.url}/healthz").status_code == 200
    wrong = {key: status for key, status in answers.items() if not 400 <= status < 500}
    assert not wrong, wrong
    assert {answers[(b"null", "unsigned")], answers[(b"null", "forged")]} == {401}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slack_events_body_that_is_not_utf8_is_4xx_not_500(bot):
    answers = post_three_ways(bot, b"\xff\xfe", "application/x-www-form-urlencoded")
    time.sleep(0.5)  # let the server thread log any traceback before pytest formats a failure
    assert httpx.get(f"{bot.url}/healthz").status_code == 200
    assert all(400 <= status < 500 for status in answers.values()), answers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_button_with_an_out_of_range_incident_id_is_answered(bot, fake_slack, caplog):
    caplog.set_level(logging.ERROR)
    body = block_action_body("incident_ack", "99999999999999999999", channel="C0GENERAL")
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200
    answer = fake_slack.fake.wait_for_call("chat.postEphemeral", timeout=10)[0].args["text"]
    crashes = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert not crashes, crashes
    assert "went wrong" not in answer, answer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slash_command_missing_user_or_channel_is_not_a_500(bot):
    answers = {}
    for body in (b"command=/incident&text=help", b"command=/incident&text=list&user_id=U01ALEX"):
        r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
        answers[body] = r.status_code
    assert all(status < 500 for status in answers.values()), answers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_declare_modal_slack_refuses_is_not_a_listener_crash(bot, fake_slack, caplog):
    caplog.set_level(logging.ERROR)
    for refused in (False, True):  # the second form Slack refuses (its trigger expired on the way)
        if refused:
            fake_slack.fake.add_fault(
                method="views.open", mode="error500", status=200, error="expired_trigger_id"
            )
        body = slash_command_body("/incident", "declare")
        r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
        assert r.status_code == 200
    assert "Could not open the form" in r.json()["text"]
    wait_until(lambda: len(fake_slack.fake.calls_to("views.open")) == 2, 10, what="two views.open calls")
    time.sleep(0.5)
    assert not logged_crashes(caplog), logged_crashes(caplog)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lone_surrogates_are_a_4xx_not_a_server_error(bot):
    am = json.loads(json.dumps(AM_FIXTURE))
    am["commonAnnotations"]["summary"] = "broken \ud800 text"
    raw = json.dumps(am).encode()  # ensure_ascii: the lone surrogate travels as the escape \ud800
    assert b"\\ud800" in raw
    r = post_alertmanager(bot.url, raw)
    pd = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
    pd["event"]["data"]["title"] = "broken \udfff title"
    pd_raw = json.dumps(pd).encode()
    headers = {"Content-Type": "application/json", **signed(pd_raw)}
    r_pd = httpx.post(f"{bot.url}/webhooks/pagerduty", content=pd_raw, headers=headers, timeout=10)
    # Starlette answers a 500 before the server thread logs the traceback. On Python 3.11 formatting a
    # traceback runs ast.parse, whose recursion counter is shared between threads: let the server finish
    # before pytest formats this test's failure, or the two race ("AST constructor recursion depth
    # mismatch", an INTERNALERROR).
    time.sleep(0.5)
    assert (r.status_code, r_pd.status_code) in {(400, 400), (422, 422), (400, 422), (422, 400)}, (
        r.status_code,
        r_pd.status_code,
    )


def test_alertmanager_duplicate_fingerprints_are_not_retried_forever(bot):
    payload = json.loads(json.dumps(AM_FIXTURE))
    payload["alerts"] = [payload["alerts"][0], json.loads(json.dumps(payload["alerts"][0]))]
    r = post_alertmanager(bot.url, payload)
    # Either reject it (422) or store the alert once (200); never "retry later" for a permanent problem.
    assert r.status_code in (200, 422), (r.status_code, r.text)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_nul_characters_are_a_4xx_not_retried_forever(bot):
    answers = {}
    for field in ("groupKey", "receiver", "summary"):
        payload = json.loads(json.dumps(AM_FIXTURE))
        payload["groupKey"] = f"nul-{field}"
        if field == "summary":
            payload["commonAnnotations"]["summary"] = "a\x00b"
        else:
            payload[field] += "\x00"
        answers[field] = post_alertmanager(bot.url, payload).status_code
    pd = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
    pd["event"]["data"]["title"] = "a\x00b"
    raw = json.dumps(pd).encode()
    headers = {"Content-Type": "application/json", **signed(raw)}
    answers["pagerduty title"] = httpx.post(
        f"{bot.url}/webhooks/pagerduty", content=raw, headers=headers, timeout=10
    ).status_code
    # Stored (NUL stripped or kept) or refused: anything but "retry later" for a permanent problem.
    assert all(status in (200, 400, 422) for status in answers.values()), answers


def post_event(bot, event: dict[str, Any], event_id: str) -> httpx.Response:
    """A correctly signed Events API callback carrying `event`."""
    body = json.dumps({"type": "event_callback", "team_id": "T0TEAM", "event_id": event_id, "event": event})
    headers = slack_headers(body.encode(), content_type="application/json")
    return httpx.post(f"{bot.url}/slack/events", content=body.encode(), headers=headers, timeout=10)


def logged_crashes(caplog) -> list[str]:
    """Exceptions logged with a traceback (a listener or Bolt crashed)."""
    return [f"{rec.name}: {rec.getMessage()}" for rec in caplog.records if rec.exc_info]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_event_with_a_non_object_item_is_ignored_not_a_listener_crash(bot, caplog):
    caplog.set_level(logging.ERROR)
    for kind in ("pin_added", "reaction_added"):
        event = {"type": kind, "user": "U01ALEX", "reaction": "pushpin", "channel_id": "C1", "item": ["x"]}
        assert post_event(bot, event, kind).status_code == 200
    time.sleep(0.5)
    assert not logged_crashes(caplog), logged_crashes(caplog)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_slack_text_with_a_nul_character_on_postgresql(bot, fake_slack, caplog):
    caplog.set_level(logging.ERROR)
    body = slash_command_body("/incident", "declare Disk a\x00b full sev2")
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200
    values = {
        "title": {"title": {"type": "plain_text_input", "value": "Form a\x00b"}},
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "SEV2"}}},
        "description": {"description": {"type": "plain_text_input", "value": "since \x00 noon"}},
    }
    view = {"id": "V1", "type": "modal", "callback_id": "declare_incident", "state": {"values": values}}
    payload = {"type": "view_submission", "team": {"id": "T0TEAM"}, "user": {"id": "U01ALEX"}, "view": view}
    form = urlencode({"payload": json.dumps(payload)}).encode()
    assert httpx.post(
        f"{bot.url}/slack/events", content=form, headers=slack_headers(form), timeout=10
    ).is_success
    time.sleep(2)  # the form is handled after the ack; deliveries follow
    assert "went wrong" not in r.json().get("text", ""), r.text
    assert not logged_crashes(caplog), logged_crashes(caplog)
    assert "Declared" in r.json().get("text", "") or "incident" in r.json().get("text", "").lower(), r.text
    with Session(bot.ctx.engine) as session:
        titles = set(session.exec(select(Incident.title)))
    assert {"Disk ab full", "Form ab"} <= titles, titles  # NUL dropped, the rest kept


SIGNED_NULLS = [
    {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "user": {"id": "U01ALEX"},
        "view": None,
        "actions": [{"action_id": "not_ours", "block_id": "b", "value": "1"}],
    },
    {"type": "block_actions", "team": None, "user": None, "view": None, "actions": None},
    {"type": "view_submission", "team": None, "user": None, "view": None},
    {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "user": None,
        "container": None,
        "actions": [{"action_id": "incident_ack", "value": "1"}],
    },
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "payload", SIGNED_NULLS, ids=["null-view", "all-null", "null-submission", "null-user"]
)
def test_signed_payloads_with_null_members_are_4xx_not_500(bot, payload, caplog):
    """Bolt's own listener matching raised on these (a 500 to a correctly signed request)."""
    caplog.set_level(logging.ERROR)
    form = urlencode({"payload": json.dumps(payload)}).encode()
    r = httpx.post(f"{bot.url}/slack/events", content=form, headers=slack_headers(form), timeout=10)
    assert r.status_code < 500, r.text
    time.sleep(0.3)
    assert not logged_crashes(caplog), logged_crashes(caplog)
    assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_pinned_message_whose_ts_is_not_a_time_is_ignored(bot, fake_slack, caplog):
    caplog.set_level(logging.ERROR)
    r = post_alertmanager(bot.url, AM_FIXTURE)
    assert r.status_code == 202, r.text
    chan = wait_until(lambda: next(iter(fake_slack.fake.channels.values()), None), 10, what="the channel")
    for ts in ("nan", "1e400", "-1", "inf", "12.34.56"):
        event = {
            "type": "pin_added",
            "user": "U01ALEX",
            "channel_id": chan.id,
            "item": {"type": "message", "channel": chan.id, "message": {"ts": ts, "text": "odd"}},
        }
        assert post_event(bot, event, ts).status_code == 200
    time.sleep(1)
    assert not logged_crashes(caplog), logged_crashes(caplog)
    with Session(bot.ctx.engine) as session:
        pinned = session.exec(select(TimelineEntry).where(col(TimelineEntry.kind) == "pinned")).all()
    assert pinned == []
