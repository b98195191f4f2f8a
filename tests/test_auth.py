"""Every signature and token check, each one missing, wrong, expired and replayed.

Three doors, three schemes:

* `/webhooks/alertmanager`: `Authorization: Bearer <ALERTMANAGER_TOKEN>`, compared in constant time.
  A bearer token has no timestamp or nonce: "expired" does not exist, and a replay is harmless because
  notifications are deduplicated by `groupKey` (Alertmanager itself repeats them).
* `/slack/events`: Slack's `v0` HMAC of `v0:<timestamp>:<body>` under the signing secret, verified by
  Bolt (`slack_sdk.signature.SignatureVerifier`) against the *wall clock* (not the bot's clock), with
  a 5-minute window either way (|now - timestamp| <= 5 minutes). A valid request is applied once: a
  replay inside the window is recognised by its receipt (`test_slack_replay.py`).
* `/webhooks/pagerduty`: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>`, one or several,
  checked against every configured secret (rotation). PagerDuty V3 signatures carry no timestamp, so
  "expired" does not exist there either; a replay is a redelivery, caught by the `event.id` receipt.

Every rejection must leave the database as it was: no incident, no receipt, no outbox row. The token
and signature checks do not depend on the database, so most tests run on SQLite only; the replay and
dedup tests, which do, run on both.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlmodel import Session, col, func, select

from bot.store.tables import Incident, Outbox, TimelineEntry, WebhookReceipt
from tests.conftest import PD_WEBHOOK_SECRETS
from tests.fakepagerduty import sign_webhook
from tests.harness import (
    AM_TOKEN,
    SIGNING_SECRET,
    post_alertmanager,
    processed,
    settle,
    slack_headers,
    slash_command_body,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
AM_FIXTURE = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
PD_TRIGGERED = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())
NEW, OLD = PD_WEBHOOK_SECRETS
WINDOW = 5 * 60  # Slack's (and Bolt's) replay window, in seconds

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def bot(start_bot):
    return start_bot()


def count(bot, table: type) -> int:
    with Session(bot.ctx.engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def nothing_written(bot, accepted_slack_requests: int = 0) -> None:
    """Nothing but the receipts of the Slack requests that were accepted (each is recorded once)."""
    assert count(bot, Incident) == 0
    assert count(bot, TimelineEntry) == 0
    assert count(bot, WebhookReceipt) == accepted_slack_requests
    assert count(bot, Outbox) == 0


def outbox_settled(bot) -> None:
    def done() -> bool:
        with Session(bot.ctx.engine) as session:
            return not session.exec(select(Outbox).where(col(Outbox.status) == "pending")).first()

    wait_until(done, 15, what="outbox drained")


# -- Alertmanager: bearer token ------------------------------------------------------------------------


def am_body(group: str = "g1") -> bytes:
    payload = json.loads(json.dumps(AM_FIXTURE))
    payload["groupKey"] = f'{{}}:{{alertname="WeaviateDown", g="{group}"}}'
    return json.dumps(payload).encode()


def post_am(bot, body: bytes, headers: dict[str, str], **kw: Any) -> httpx.Response:
    r = httpx.post(
        f"{bot.url}/webhooks/alertmanager",
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
        **kw,
    )
    return settle(bot.url, r)


AM_WRONG_AUTHORIZATION = [
    "Bearer wrong",
    f"Bearer {AM_TOKEN}x",
    f"Bearer {AM_TOKEN[:-1]}",
    f"Bearer {AM_TOKEN.upper()}",
    "Bearer",
    AM_TOKEN,  # no scheme
    f"Basic {AM_TOKEN}",  # wrong scheme
    f"Token {AM_TOKEN}",
    f"Bearer {AM_TOKEN} {AM_TOKEN}",
    f"Bearer {AM_TOKEN},Bearer {AM_TOKEN}",
    f"Bearer  {AM_TOKEN}",  # exactly what Alertmanager sends, nothing looser
    "",
]


@sqlite_only
def test_alertmanager_missing_wrong_or_misplaced_token_is_401_and_stores_nothing(bot):
    body = am_body()
    r = post_am(bot, body, {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["detail"] and AM_TOKEN not in r.text

    for authorization in AM_WRONG_AUTHORIZATION:
        r = post_am(bot, body, {"Authorization": authorization})
        assert r.status_code == 401, (authorization, r.status_code, r.text)

    # The token anywhere but the Authorization header does not count: not in the query string (it would
    # end up in access logs and proxies), another header, or a cookie.
    for params in ({"token": AM_TOKEN}, {"access_token": AM_TOKEN}, {"Authorization": f"Bearer {AM_TOKEN}"}):
        assert post_am(bot, body, {}, params=params).status_code == 401, params
    for headers in (
        {"X-Auth-Token": AM_TOKEN},
        {"X-Authorization": f"Bearer {AM_TOKEN}"},
        {"Proxy-Authorization": f"Bearer {AM_TOKEN}"},
        {"Cookie": f"token={AM_TOKEN}"},
    ):
        assert post_am(bot, body, headers).status_code == 401, headers

    # Checked before the body is parsed: a stranger learns nothing about our payload format.
    for junk in (b"{not json", b"", b'{"version": "3"}', b"\xff\xfe", b"[]"):
        assert post_am(bot, junk, {}).status_code == 401
        assert post_am(bot, junk, {"Authorization": "Bearer nope"}).status_code == 401
    nothing_written(bot)


def test_alertmanager_right_token_is_accepted_and_a_replay_is_deduplicated(bot):
    assert post_alertmanager(bot.url, AM_FIXTURE, token="wrong").status_code == 401
    r = post_alertmanager(bot.url, AM_FIXTURE)
    assert r.status_code == 202 and processed(bot, r)["decision"] == "first notification"
    incident = processed(bot, r)["incident"]
    outbox_settled(bot)
    timeline = count(bot, TimelineEntry)
    # A replayed notification (Alertmanager repeats a group every repeat_interval; a captured request
    # sent again looks the same) lands on the same incident by groupKey and adds nothing.
    for _ in range(3):
        r = post_alertmanager(bot.url, AM_FIXTURE)
        assert r.status_code == 202 and processed(bot, r)["incident"] == incident
    assert count(bot, Incident) == 1
    assert count(bot, TimelineEntry) == timeline


@sqlite_only
def test_alertmanager_without_a_configured_token_refuses_every_request(start_bot, caplog):
    # Fail closed (issue 16, section 4): a forgotten ALERTMANAGER_TOKEN used to open the endpoint to
    # anyone. Now every request is refused, and the start says why and how to fix it.
    caplog.set_level(logging.INFO)
    bot = start_bot(alertmanager_token=None)
    for token in (None, "anything", AM_TOKEN):
        r = post_alertmanager(bot.url, am_body(), token=token)
        assert r.status_code == 401, (token, r.status_code, r.text)
    nothing_written(bot)
    said = [r.getMessage() for r in caplog.records if "ALERTMANAGER_TOKEN" in r.getMessage()]
    assert said and "refuses every request" in said[0] and "ALERTMANAGER_AUTH=none" in said[0], said


@sqlite_only
def test_alertmanager_auth_none_accepts_unauthenticated_requests_on_purpose(start_bot, caplog):
    caplog.set_level(logging.INFO)
    bot = start_bot(alertmanager_token=None, alertmanager_auth="none")
    assert post_alertmanager(bot.url, AM_FIXTURE, token=None).status_code == 202
    assert post_alertmanager(bot.url, am_body("g2"), token="anything").status_code == 202
    said = [r.getMessage() for r in caplog.records if "ALERTMANAGER_AUTH=none" in r.getMessage()]
    assert said and "accepts unauthenticated requests" in said[0], said


@sqlite_only
def test_alertmanager_auth_none_does_not_switch_off_a_configured_token(start_bot):
    # Both set: the token is the more deliberate choice and the closed one.
    bot = start_bot(alertmanager_auth="none")
    assert post_alertmanager(bot.url, am_body(), token=None).status_code == 401
    assert post_alertmanager(bot.url, am_body()).status_code == 202


def test_alertmanager_auth_takes_only_bearer_or_none():
    from pydantic import ValidationError

    from bot.settings import Settings

    assert Settings(_env_file=None).alertmanager_auth == "bearer"
    with pytest.raises(ValidationError, match="alertmanager_auth"):
        Settings(_env_file=None, alertmanager_auth="off")


# -- Slack: signing secret -----------------------------------------------------------------------------


def post_slack(bot, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)


def command(text: str) -> bytes:
    return slash_command_body("/incident", text)


# A request that would write if it got through: every rejected variant below must leave no incident.
DECLARE = command("declare Should never be declared sev1")

SLACK_BAD_SIGNATURES: dict[str, Callable[[str], str]] = {
    "zeros": lambda good: "v0=" + "0" * 64,
    "empty hmac": lambda good: "v0=",
    "empty": lambda good: "",
    "garbage": lambda good: "garbage",
    "v1 prefix": lambda good: "v1=" + good[3:],  # right HMAC, wrong version
    "no prefix": lambda good: good[3:],
    "upper case": lambda good: "v0=" + good[3:].upper(),  # Slack sends lower case; the compare is exact
    "truncated": lambda good: good[:-1],
    "two signatures": lambda good: f"v0={'0' * 64},{good}",
}


@sqlite_only
def test_slack_missing_wrong_or_tampered_signature_is_401_and_runs_nothing(bot):
    # The valid request reaches the listener (`help` writes nothing).
    help_body = command("help")
    r = post_slack(bot, help_body, slack_headers(help_body))
    assert r.status_code == 200 and "/incident declare" in r.json()["text"]

    # Missing headers.
    for drop in (
        ("X-Slack-Request-Timestamp",),
        ("X-Slack-Signature",),
        ("X-Slack-Request-Timestamp", "X-Slack-Signature"),
    ):
        headers = slack_headers(DECLARE)
        for name in drop:
            del headers[name]
        assert post_slack(bot, DECLARE, headers).status_code == 401, drop

    # Wrong signatures.
    for name, bad in SLACK_BAD_SIGNATURES.items():
        headers = slack_headers(DECLARE)
        headers["X-Slack-Signature"] = bad(headers["X-Slack-Signature"])
        assert post_slack(bot, DECLARE, headers).status_code == 401, name
    assert post_slack(bot, DECLARE, slack_headers(DECLARE, secret=SIGNING_SECRET + "x")).status_code == 401
    assert post_slack(bot, DECLARE, slack_headers(DECLARE, secret="")).status_code == 401

    # Tampered: body changed after signing, or the signed timestamp swapped (it is part of the HMAC).
    harmless = command("declare Harmless sev3")
    tampered = harmless.replace(b"Harmless", b"Harmful!")
    assert len(tampered) == len(harmless)
    assert (
        post_slack(
            bot, tampered, slack_headers(harmless) | {"Content-Type": "application/x-www-form-urlencoded"}
        ).status_code
        == 401
    )
    moved = slack_headers(harmless, timestamp=int(time.time()) - 10)
    moved["X-Slack-Request-Timestamp"] = str(int(time.time()))
    assert post_slack(bot, harmless, moved).status_code == 401
    nothing_written(bot, accepted_slack_requests=1)  # the `help` above


@sqlite_only
def test_slack_expired_or_future_timestamps_are_401(bot):
    now = int(time.time())
    # Correctly signed, but long ago: exactly what a captured request replayed later looks like; and
    # stamped in the future beyond the window (a pre-computed replay).
    for timestamp in (
        now - WINDOW - 10,
        now - 3600,
        now - 86400 * 365,
        0,
        now + WINDOW + 10,
        now + 86400,
        int("9" * 40),
    ):
        r = post_slack(bot, DECLARE, slack_headers(DECLARE, timestamp=timestamp))
        assert r.status_code == 401, (timestamp - now, r.status_code)
    nothing_written(bot)

    # Inside the window either way is accepted.
    help_body = command("help")
    for skew in (-(WINDOW - 30), WINDOW - 30):
        r = post_slack(bot, help_body, slack_headers(help_body, timestamp=now + skew))
        assert r.status_code == 200, skew


@sqlite_only
def test_slack_window_uses_the_wall_clock_not_the_bot_clock(start_bot):
    from datetime import UTC, datetime

    from tests.harness import Clock

    # The bot's clock is far behind; Slack's window is about real time, so a fresh request passes and a
    # request stamped with the bot's clock does not.
    bot = start_bot(clock=Clock(datetime(2025, 1, 1, tzinfo=UTC)))
    body = command("help")
    assert post_slack(bot, body, slack_headers(body)).status_code == 200
    stale = int(bot.clock().timestamp())
    assert post_slack(bot, body, slack_headers(body, timestamp=stale)).status_code == 401


@sqlite_only
def test_slack_malformed_timestamp_is_401_not_a_server_error(bot):
    answers = {}
    for timestamp in ("abc", "", "12.5", "-", "1e9", "0x10"):
        headers = slack_headers(DECLARE)
        headers["X-Slack-Request-Timestamp"] = timestamp
        answers[timestamp] = post_slack(bot, DECLARE, headers).status_code
    assert httpx.get(f"{bot.url}/healthz").status_code == 200
    nothing_written(bot)
    assert set(answers.values()) == {401}, answers


def test_slack_replay_within_the_window_is_applied_once(bot):
    """What "replayed" means for Slack, exactly as the code behaves.

    Slack's scheme bounds a replay by the 5-minute window only: the very same signed request sent
    twice within 5 minutes passes the signature check twice. The bot records each request it applies
    (a receipt keyed by its `trigger_id`, see `bot/slack/admission.py`), so the copy is answered 200
    with an empty body and does nothing: one `/incident declare` replayed declares one incident. A
    replay after the window is rejected (below, and `test_slack_expired_or_future_timestamps_are_401`).
    """
    body = command("declare Replayed declaration sev3")
    headers = slack_headers(body)
    first = post_slack(bot, body, headers)
    second = post_slack(bot, body, headers)
    assert first.status_code == 200 and second.status_code == 200
    assert "declared" in first.json()["text"] and second.content == b""
    assert count(bot, Incident) == 1

    # The same bytes and headers as a request made 6 minutes ago: rejected, however valid the HMAC.
    old = command("declare Replayed later sev3")
    assert (
        post_slack(bot, old, slack_headers(old, timestamp=int(time.time()) - WINDOW - 60)).status_code == 401
    )
    assert count(bot, Incident) == 1


@sqlite_only
def test_slack_unsigned_buttons_and_events_are_401(bot, fake_slack):
    """Buttons, events and the URL challenge are verified like commands: an unsigned click does nothing."""
    assert post_alertmanager(bot.url, AM_FIXTURE).status_code == 202
    wait_until(lambda: fake_slack.fake.calls_to("chat.postMessage"), 10, what="incident card")
    payload = {
        "type": "block_actions",
        "user": {"id": "U0EVIL"},
        "team": {"id": "T0TEAM"},
        "container": {"type": "message", "channel_id": "C0GENERAL", "message_ts": "1.0"},
        "channel": {"id": "C0GENERAL"},
        "actions": [{"action_id": "incident_resolve", "value": "1", "type": "button", "block_id": "b"}],
        "trigger_id": "1.2.3",
        "api_app_id": "A0APP",
        "token": "deprecated",
    }
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    click = urlencode({"payload": json.dumps(payload)}).encode()
    assert post_slack(bot, click, form).status_code == 401
    assert post_slack(bot, click, slack_headers(click, secret="guessed")).status_code == 401
    stale = slack_headers(click, timestamp=int(time.time()) - WINDOW - 1)
    assert post_slack(bot, click, stale).status_code == 401
    as_json = {"Content-Type": "application/json"}
    event = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "event": {"type": "pin_added", "channel_id": "C1"},
    }
    assert post_slack(bot, json.dumps(event).encode(), as_json).status_code == 401
    challenge = json.dumps({"type": "url_verification", "challenge": "abc", "token": "x"}).encode()
    r = post_slack(bot, challenge, as_json)
    assert r.status_code == 401 and "abc" not in r.text
    with Session(bot.ctx.engine) as session:
        incident = session.exec(select(Incident)).one()
        assert incident.status == "triggered"
        assert not session.exec(
            select(TimelineEntry).where(col(TimelineEntry.actor) == "slack:U0EVIL")
        ).first()


# -- PagerDuty: X-PagerDuty-Signature ------------------------------------------------------------------


def pd_body(event_id: str = "01EVAUTH0000000000000000A1", incident_id: str = "QAUTH0000001") -> bytes:
    payload = json.loads(json.dumps(PD_TRIGGERED))
    payload["event"]["id"] = event_id
    payload["event"]["data"]["id"] = incident_id
    payload["event"]["data"]["html_url"] = f"https://acme.pagerduty.com/incidents/{incident_id}"
    return json.dumps(payload).encode()


def post_pd(bot, body: bytes, signature: str | None, **headers: str) -> httpx.Response:
    sent: dict[str, str | bytes] = {"Content-Type": "application/json", **headers}
    if signature is not None:
        sent["X-PagerDuty-Signature"] = signature.encode()  # bytes: non-ASCII is sent as UTF-8
    return settle(
        bot.url, httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=sent, timeout=10)
    )


PD_BAD_SIGNATURES: dict[str, Callable[[str], str]] = {
    "empty": lambda good: "",
    "empty hmac": lambda good: "v1=",
    "short": lambda good: "v1=deadbeef",
    "zeros": lambda good: "v1=" + "0" * 64,
    "garbage": lambda good: "garbage",
    "only commas": lambda good: ",,,",
    "v0 prefix": lambda good: "v0=" + good,  # right HMAC, wrong version
    "sha256 prefix": lambda good: "sha256=" + good,
    "no prefix": lambda good: good,
    "truncated": lambda good: "v1=" + good[:-2],
    "extended": lambda good: "v1=" + good + "00",
    "spaced": lambda good: "v1 = " + good,
    "non-ascii": lambda good: "v1=" + good[:-1] + "é",
}


@sqlite_only
def test_pagerduty_missing_wrong_or_tampered_signature_is_401_and_stores_nothing(bot):
    body = pd_body()
    r = post_pd(bot, body, None)
    assert r.status_code == 401 and "X-PagerDuty-Signature" in r.json()["detail"]

    good_hex = sign_webhook(body, NEW)[3:]
    for name, bad in PD_BAD_SIGNATURES.items():
        assert post_pd(bot, body, bad(good_hex)).status_code == 401, name
    assert post_pd(bot, body, sign_webhook(body, "not-our-secret")).status_code == 401
    assert post_pd(bot, body, sign_webhook(body, ["a", "b", "c"])).status_code == 401
    assert (
        post_pd(bot, body, None, **{"X-PagerDuty-Signature-V1": sign_webhook(body, NEW)}).status_code == 401
    )

    # Checked before the body is parsed.
    for junk in (b"{not json", b"", b"[]", b'{"event": {}}'):
        assert post_pd(bot, junk, None).status_code == 401
        assert post_pd(bot, junk, "v1=" + "a" * 64).status_code == 401

    # Tampered after signing: the HMAC is over the exact bytes.
    signature = sign_webhook(body, [NEW, OLD])
    for tampered in (
        body.replace(b"Checkout API error", b"Checkout API errxr"),
        body + b" ",
        body.replace(b'"urgency": "high"', b'"urgency": "low" '),
        json.dumps(json.loads(body), indent=2).encode(),  # same JSON, other bytes
    ):
        assert post_pd(bot, tampered, signature).status_code == 401
    nothing_written(bot)


@sqlite_only
def test_pagerduty_one_valid_signature_among_several_is_enough(bot):
    def header(body: bytes, *parts: str) -> str:
        named = {
            "NEW": sign_webhook(body, NEW),
            "OLD": sign_webhook(body, OLD),
            "NEW_UPPER": "v1=" + sign_webhook(body, NEW)[3:].upper(),  # hex compares case-insensitively
        }
        return ",".join(named.get(p, p) for p in parts)

    cases = [
        ("v1=" + "0" * 64, "NEW"),
        ("NEW", "v1=" + "0" * 64),
        ("garbage", "v0=abc", "NEW"),
        ("v1=" + "f" * 64, "v1=" + "e" * 64, "OLD"),
        ("NEW_UPPER",),
        (" NEW ", " OLD"),
    ]
    for n, parts in enumerate(cases):
        body = pd_body(f"E{n}", f"QSEV{n}")
        r = post_pd(bot, body, header(body, *[p.strip() for p in parts]))
        assert r.status_code == 202 and processed(bot, r)["decision"] == "opened", (parts, r.text)


@sqlite_only
def test_pagerduty_secret_rotation(start_bot):
    """While both secrets are configured either one signs; once the old one is removed only the new one
    does; a delivery signed with every secret of the subscription passes throughout."""
    during = start_bot()  # PAGERDUTY_WEBHOOK_SECRET="new,old"
    for n, secret in enumerate((OLD, NEW, [OLD, NEW])):
        body = pd_body(f"E{n}", f"Q{n}")
        assert post_pd(during, body, sign_webhook(body, secret)).status_code == 202, secret

    after = start_bot(pagerduty_webhook_secret=f" {NEW} ")  # whitespace around the value is tolerated
    body = pd_body("E10", "Q10")
    assert post_pd(after, body, sign_webhook(body, OLD)).status_code == 401
    assert post_pd(after, body, sign_webhook(body, NEW)).status_code == 202
    body = pd_body("E11", "Q11")
    assert post_pd(after, body, sign_webhook(body, [OLD, NEW])).status_code == 202


@sqlite_only
def test_pagerduty_without_a_configured_secret_rejects_every_delivery(start_bot):
    bot = start_bot(pagerduty_webhook_secret=None)
    body = pd_body()
    for signature in (None, "", "v1=", sign_webhook(body, NEW), sign_webhook(body, OLD)):
        assert post_pd(bot, body, signature).status_code == 401, signature
    nothing_written(bot)


def test_pagerduty_replayed_delivery_is_a_duplicate_not_a_second_incident(bot, fake_slack):
    """A replay (PagerDuty's own retry, or a captured delivery sent again) carries a valid signature and
    the same `event.id`: it must answer 2xx (so PagerDuty stops retrying) and change nothing."""
    body = pd_body()
    signature = sign_webhook(body, NEW)
    first = post_pd(bot, body, signature, **{"X-Webhook-Id": "WH-A"})
    assert first.status_code == 202 and processed(bot, first)["decision"] == "opened"
    wait_until(lambda: fake_slack.fake.calls_to("conversations.create"), 10, what="channel created")
    outbox_settled(bot)
    timeline, outbox = count(bot, TimelineEntry), count(bot, Outbox)

    # The exact bytes again, with and without the delivery header, then re-signed with the old secret,
    # then re-serialised (other bytes, same event id) and correctly signed.
    for headers in ({"X-Webhook-Id": "WH-A"}, {}, {"X-Webhook-Id": "WH-B"}):
        r = post_pd(bot, body, signature, **headers)
        assert r.status_code == 200 and r.json() == {"status": "duplicate"}, headers
    assert post_pd(bot, body, sign_webhook(body, OLD)).json() == {"status": "duplicate"}
    pretty = json.dumps(json.loads(body), indent=1).encode()
    assert post_pd(bot, pretty, sign_webhook(pretty, NEW)).json() == {"status": "duplicate"}

    time.sleep(0.5)  # time for the worker to deliver anything a replay might have enqueued
    assert count(bot, Incident) == 1
    assert count(bot, TimelineEntry) == timeline
    assert count(bot, Outbox) == outbox
    assert len(fake_slack.fake.calls_to("conversations.create")) == 1
