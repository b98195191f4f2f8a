"""JSON that Python's parser chokes on gets a 4xx, never a 5xx (issue 16, item 1.9).

PagerDuty retries a 5xx for 48 hours and Alertmanager retries it forever, so a request that can never
succeed must be refused with 400/422. Two inputs did reach a 500: a body nested 1,000 levels deep
(`json.loads` raises RecursionError) and an integer of 5,000 digits (Python refuses to convert more than
4,300 digits and raises ValueError). An integer that Python accepts but no database column holds
(`truncatedAlerts` of 4,000 digits) must be a 422, not a 500 (SQLite) or an endless 503 (PostgreSQL).
The Slack endpoint carries JSON too (interactive payloads in a form field, events as a JSON body).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlmodel import Session, func, select

from bot.store.tables import Incident, WebhookReceipt
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import post_alertmanager, processed, settle, slack_headers

FIXTURES = Path(__file__).parent / "fixtures"
AM_FIXTURE = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
PD_TRIGGERED = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())

DEEP = 1000
HUGE_INT = "9" * 5000  # beyond sys.get_int_max_str_digits() (4300)
BIG_INT = "9" * 4000  # Python parses it; no database column holds it


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def am_with(field: str, raw_value: str) -> bytes:
    """The fixture with `field` set to a raw JSON literal (not expressible through json.dumps)."""
    payload = json.loads(json.dumps(AM_FIXTURE))
    payload[field] = "__RAW__"
    return json.dumps(payload).replace('"__RAW__"', raw_value).encode()


def pd_with(path: tuple[str, ...], raw_value: str) -> bytes:
    payload = json.loads(json.dumps(PD_TRIGGERED))
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "__RAW__"
    return json.dumps(payload).replace('"__RAW__"', raw_value).encode()


def post_pd(bot, body: bytes) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign_webhook(body, PD_WEBHOOK_SECRETS[0]),
    }
    return settle(
        bot.url, httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=headers, timeout=30)
    )


def post_slack(bot, body: bytes, content_type: str) -> httpx.Response:
    headers = slack_headers(body, content_type=content_type)
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=30)


def nothing_stored(bot) -> None:
    with Session(bot.ctx.engine) as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 0
        assert session.exec(select(func.count()).select_from(WebhookReceipt)).one() == 0


def still_serving(bot) -> None:
    r = post_alertmanager(bot.url, AM_FIXTURE)
    assert r.status_code == 202 and processed(bot, r)["decision"] == "first notification", r.text


@pytest.fixture
def bot(start_bot):
    return start_bot()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "body", [nested(DEEP), nested_objects(DEEP), nested(DEEP * 10)], ids=["arrays", "objects", "10k"]
)
def test_deeply_nested_json_is_400_on_both_webhooks(bot, body):
    as_am = am_with("commonAnnotations", body)
    r = post_alertmanager(bot.url, as_am)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "nested" in r.json()["detail"]
    r = post_alertmanager(bot.url, body.encode())  # the whole body, not only a field
    assert r.status_code == 400, (r.status_code, r.text[:300])

    r = post_pd(bot, pd_with(("event", "data", "service"), body))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "nested" in r.json()["detail"]
    r = post_pd(bot, pd_with(("event", "client"), body))  # a field the model keeps as free-form JSON
    assert r.status_code == 400, (r.status_code, r.text[:300])
    nothing_stored(bot)
    still_serving(bot)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_moderate_nesting_is_a_validation_question_not_a_parse_error(bot):
    # 20 levels is deeper than any real payload but well within the parser's reach: the model decides.
    r = post_alertmanager(bot.url, am_with("commonLabels", nested_objects(20)))
    assert r.status_code == 422, r.text[:300]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_integer_of_5000_digits_is_400_on_both_webhooks(bot):
    r = post_alertmanager(bot.url, am_with("truncatedAlerts", HUGE_INT))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "digits" in r.json()["detail"]
    r = post_pd(bot, pd_with(("event", "data", "number"), HUGE_INT))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    r = post_pd(bot, pd_with(("event", "client"), f'{{"n": {HUGE_INT}}}'))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    nothing_stored(bot)
    still_serving(bot)


def test_an_integer_no_column_holds_is_422_not_a_database_error(bot):
    # Python parses 4,000 digits; SQLite's INTEGER overflowed (500) and PostgreSQL's refused it (503,
    # retried by Alertmanager for ever).
    for value in (BIG_INT, str(2**31), str(2**63)):
        r = post_alertmanager(bot.url, am_with("truncatedAlerts", value))
        assert r.status_code == 422, (value[:20], r.status_code, r.text[:300])
        assert any(e.startswith("truncatedAlerts:") for e in r.json()["detail"]["errors"])
    r = post_pd(bot, pd_with(("event", "data", "number"), BIG_INT))
    assert r.status_code in (202, 422), (r.status_code, r.text[:300])
    still_serving(bot)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_nan_and_infinity_are_not_json(bot):
    # Python's json accepts them; JSON (and PostgreSQL's json type) does not.
    for literal in ("NaN", "Infinity", "-Infinity"):
        r = post_alertmanager(bot.url, am_with("truncatedAlerts", literal))
        assert r.status_code == 400, (literal, r.status_code, r.text[:300])
        r = post_pd(bot, pd_with(("event", "client"), f'{{"x": {literal}}}'))
        assert r.status_code == 400, (literal, r.status_code, r.text[:300])
    nothing_stored(bot)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slack_endpoint_answers_4xx_to_hostile_json(bot):
    deep = nested(DEEP)
    for payload in (deep, f'{{"type": "block_actions", "actions": {deep}}}', f'{{"type": {HUGE_INT}}}'):
        form = urlencode({"payload": payload}).encode()
        r = post_slack(bot, form, "application/x-www-form-urlencoded")
        assert 400 <= r.status_code < 500, (payload[:40], r.status_code, r.text[:300])
        event = f'{{"type": "event_callback", "team_id": "T0TEAM", "event": {payload}}}'.encode()
        r = post_slack(bot, event, "application/json")
        assert 400 <= r.status_code < 500, (payload[:40], r.status_code, r.text[:300])
    for body in (deep.encode(), HUGE_INT.encode()):
        r = post_slack(bot, body, "application/json")
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    nothing_stored(bot)
    help_body = urlencode({"command": "/incident", "text": "help", "user_id": "U1", "team_id": "T0TEAM"})
    r = post_slack(bot, help_body.encode(), "application/x-www-form-urlencoded")
    assert r.status_code == 200
