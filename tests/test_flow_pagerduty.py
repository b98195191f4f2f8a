"""PagerDuty both ways, through the real endpoints: signed V3 webhooks in, REST and Events API calls out.

The bot runs with the fake Slack and the fake PagerDuty (`start_bot` passes the PD settings: two webhook
secrets, the From email, the fake's URLs), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from bot.store.tables import Incident, Outbox, Page, TimelineEntry, WebhookReceipt
from tests.conftest import PD_FROM_EMAIL, PD_WEBHOOK_SECRETS
from tests.fakepagerduty import ROUTING_KEY, sign_webhook
from tests.harness import (
    Clock,
    block_action_body,
    join_channel,
    post_alertmanager,
    processed,
    settle,
    slack_headers,
    slash_command_body,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
EVENTS = FIXTURES / "pagerduty-v3" / "events"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PD_ID = "Q2K3SB1VXYZ7AB"
PD_URL = f"https://acme.pagerduty.com/incidents/{PD_ID}"
NEW, OLD = PD_WEBHOOK_SECRETS


def pd_event(kind: str, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A recorded V3 delivery (`incident.acknowledged`, ...), with a new event id and data overrides."""
    body = json.loads((EVENTS / f"{kind}.json").read_text())
    if event_id:
        body["event"]["id"] = event_id
    body["event"]["data"].update(data)
    return body


def post_pd(
    bot,
    payload: dict[str, Any] | bytes,
    secret: str | list[str] | None = NEW,
    webhook_id: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    elif secret is not None:
        headers["X-PagerDuty-Signature"] = sign_webhook(body, secret)
    if webhook_id:
        headers["X-Webhook-Id"] = webhook_id
    r = httpx.post(f"{bot.url}/webhooks/pagerduty", content=body, headers=headers, timeout=10)
    return settle(bot.url, r)  # processed by the inbox drain once this returns


def click(bot, action_id: str, value: str, user: str, channel: str) -> None:
    body = block_action_body(action_id, value, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text


def db(bot) -> Session:
    return Session(bot.ctx.engine)


def incidents(bot) -> list[Incident]:
    with db(bot) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.id))))


def timeline(bot, incident_id: int, kind: str | None = None) -> list[TimelineEntry]:
    with db(bot) as session:
        query = select(TimelineEntry).where(col(TimelineEntry.incident_id) == incident_id)
        if kind:
            query = query.where(col(TimelineEntry.kind) == kind)
        return list(session.exec(query.order_by(col(TimelineEntry.id))))


def idle(bot, timeout: float = 10) -> None:
    """Wait until the outbox has nothing pending that is due (retries later than now excepted)."""

    def done() -> bool:
        with db(bot) as session:
            rows = session.exec(select(Outbox).where(col(Outbox.status) == "pending")).all()
            return not [r for r in rows if r.not_before <= bot.clock()]

    wait_until(done, timeout, what="outbox drained")


def texts(fake, channel_id: str) -> list[str]:
    return [m.get("text", "") for m in fake.messages(channel_id)]


def dms_to(fake, user: str) -> list:
    dm = next((c.id for c in fake.channels.values() if c.is_im and c.user == user), None)
    return [c for c in fake.calls_to("chat.postMessage") if dm and c.args.get("channel") == dm and c.ok]


def incident_channel(fake):
    return wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-")), None),
        10,
        what="incident channel",
    )


def puts(pd) -> list:
    return pd.fake.calls_to("PUT", f"/incidents/{PD_ID}")


@pytest.fixture
def bot(start_bot):
    return start_bot(clock=Clock(T0))


def open_from_pagerduty(bot, fake_slack) -> tuple[Incident, Any]:
    r = post_pd(bot, pd_event("incident.triggered"))
    assert r.status_code == 202, r.text
    assert processed(bot, r)["decision"] == "opened"
    chan = incident_channel(fake_slack.fake)
    wait_until(
        lambda: any(m.get("blocks") for m in fake_slack.fake.messages(chan.id)), 10, what="incident card"
    )
    (incident,) = incidents(bot)
    return incident, chan


# -- authentication and validation ---------------------------------------------------------------------


def test_missing_or_wrong_signature_is_401_and_changes_nothing(bot):
    payload = pd_event("incident.triggered")
    assert post_pd(bot, payload, secret=None).status_code == 401
    assert post_pd(bot, payload, secret="not-our-secret").status_code == 401
    assert post_pd(bot, payload, signature="v1=deadbeef").status_code == 401
    assert post_pd(bot, payload, signature="sha256=" + sign_webhook(b"{}", NEW)[3:]).status_code == 401
    # Signed body, then tampered with.
    body = json.dumps(payload).encode()
    tampered = body.replace(b"Checkout API error", b"Checkout API errxr")
    assert post_pd(bot, tampered, signature=sign_webhook(body, NEW)).status_code == 401
    assert incidents(bot) == []


def test_either_secret_passes_during_a_rotation(bot):
    # PagerDuty signs with every secret of the subscription; we accept any match with any of ours.
    assert post_pd(bot, pd_event("incident.triggered"), secret=OLD).status_code == 202
    ack = pd_event("incident.acknowledged")
    assert post_pd(bot, ack, secret=["some-other-secret", NEW]).status_code == 202
    (incident,) = incidents(bot)
    assert incident.status == "acknowledged" and incident.acknowledged_by == "pagerduty:Alice Ops"


def test_malformed_and_invalid_envelopes(bot):
    assert post_pd(bot, b"{not json").status_code == 400
    assert post_pd(bot, b"").status_code == 400
    r = post_pd(bot, {"messages": []})
    assert r.status_code == 422 and any(e.startswith("event") for e in r.json()["detail"]["errors"])
    bad = pd_event("incident.triggered")
    bad["event"]["data"]["status"] = "exploded"
    r = post_pd(bot, bad)
    assert r.status_code == 422
    assert any("status" in e for e in r.json()["detail"]["errors"]), r.text
    wrong_kind = pd_event("incident.triggered")
    wrong_kind["event"]["data"]["type"] = "incident_note"
    assert post_pd(bot, wrong_kind).status_code == 422
    assert incidents(bot) == []


def test_event_types_we_do_not_handle_are_acknowledged_and_ignored(bot):
    other = pd_event("incident.triggered", "01EVSVC")
    other["event"]["event_type"] = "service.updated"
    other["event"]["data"] = {"id": "PF9KMXH", "type": "service", "name": "Checkout API"}
    r = post_pd(bot, other)
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    responder = pd_event("incident.triggered", "01EVRESP")
    responder["event"]["event_type"] = "incident.responder.added"
    assert post_pd(bot, responder).json()["status"] == "ignored"
    assert incidents(bot) == []


def test_redelivered_events_change_nothing(bot, fake_slack):
    first = post_pd(bot, pd_event("incident.triggered"), webhook_id="WH-1")
    assert processed(bot, first)["decision"] == "opened"
    # Same event.id (PagerDuty retrying), with and without the same X-Webhook-Id.
    assert post_pd(bot, pd_event("incident.triggered"), webhook_id="WH-1").json() == {"status": "duplicate"}
    assert post_pd(bot, pd_event("incident.triggered")).json() == {"status": "duplicate"}
    # Same X-Webhook-Id with another event id: also a redelivery.
    again = pd_event("incident.acknowledged")
    assert post_pd(bot, again, webhook_id="WH-1").json() == {"status": "duplicate"}
    ack = pd_event("incident.acknowledged")
    assert processed(bot, post_pd(bot, ack, webhook_id="WH-2"))["decision"] == "changed"
    assert post_pd(bot, ack, webhook_id="WH-3").json() == {"status": "duplicate"}

    (incident,) = incidents(bot)
    assert incident.status == "acknowledged"
    assert len(timeline(bot, incident.id, "opened")) == 1
    assert len(timeline(bot, incident.id, "status")) == 1
    with db(bot) as session:
        keys = set(session.exec(select(WebhookReceipt.key)))
    assert keys == {
        "event:01EVTRIG0000000000000000A1",
        "webhook:WH-1",
        "event:01EVACK00000000000000000A2",
        "webhook:WH-2",
    }
    idle(bot)
    chan = incident_channel(fake_slack.fake)
    assert sum("Acknowledged in PagerDuty" in t for t in texts(fake_slack.fake, chan.id)) == 1


# -- the round trip ------------------------------------------------------------------------------------


def test_triggered_opens_a_channel_without_paging_and_slack_ack_reaches_pagerduty_once(
    bot, fake_slack, fake_pagerduty
):
    fake, pd = fake_slack.fake, fake_pagerduty
    pd.fake.add_incident(PD_ID, "triggered")
    incident, chan = open_from_pagerduty(bot, fake_slack)
    assert incident.source == "pagerduty" and incident.external_id == PD_ID
    assert incident.external_url == PD_URL and incident.severity == "SEV1"  # no priority, high urgency
    assert incident.rotation is None
    wait_until(lambda: any(PD_URL in t for t in texts(fake, chan.id)), 10, what="link to PagerDuty")
    card = next(m for m in fake.messages(chan.id) if m.get("blocks"))
    assert PD_URL in json.dumps(card["blocks"]) and "Checkout API error rate" in json.dumps(card["blocks"])
    wait_until(
        lambda: (
            any("runbook" in t.lower() for t in texts(fake, chan.id)) or timeline(bot, incident.id, "runbook")
        ),
        10,
    )
    idle(bot)
    # PagerDuty escalates its own incidents: no DM page, no escalation timer, no PagerDuty call.
    assert not [c for c in fake.channels.values() if c.is_im]
    with db(bot) as session:
        assert session.exec(select(Page)).all() == []
    bot.clock.advance(hours=2)
    bot.tick()
    assert not [c for c in fake.channels.values() if c.is_im]
    assert pd.fake.calls == []

    # PagerDuty pages for it, so the people in its channel work and command it.
    join_channel(bot, fake, chan.id, "U01ALEX")
    click(bot, "incident_ack", str(incident.id), "U01ALEX", chan.id)
    wait_until(lambda: puts(pd), 10, what="PUT /incidents/{id}")
    (put,) = puts(pd)
    assert put.body == {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    assert put.header("From") == PD_FROM_EMAIL and put.status == 200
    assert pd.fake.incident(PD_ID)["status"] == "acknowledged"

    # PagerDuty tells us about the acknowledgement we made: no second transition, nothing sent back.
    r = post_pd(bot, pd_event("incident.acknowledged"))
    assert r.status_code == 202 and processed(bot, r)["decision"] == "noop"
    idle(bot)
    assert len(puts(pd)) == 1
    assert [e.text for e in timeline(bot, incident.id, "status")] == ["triggered -> acknowledged"]
    ack_messages = [t for t in texts(fake, chan.id) if "Acknowledged" in t]
    assert len(ack_messages) == 1 and "<@U01ALEX>" in ack_messages[0]
    (stored,) = incidents(bot)
    assert stored.acknowledged_by == "slack:U01ALEX"

    # Resolve in Slack -> resolved in PagerDuty; PagerDuty's resolved webhook is then a no-op.
    click(bot, "incident_resolve", str(incident.id), "U01ALEX", chan.id)
    wait_until(lambda: len(puts(pd)) == 2, 10, what="PUT resolved")
    assert puts(pd)[1].body["incident"]["status"] == "resolved"
    assert pd.fake.incident(PD_ID)["status"] == "resolved"
    assert processed(bot, post_pd(bot, pd_event("incident.resolved")))["decision"] == "noop"
    idle(bot)
    assert len(puts(pd)) == 2
    assert [e.text for e in timeline(bot, incident.id, "status")] == [
        "triggered -> acknowledged",
        "acknowledged -> resolved",
    ]
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | resolved"), 10)


def test_changes_made_in_pagerduty_show_in_slack_and_are_not_sent_back(bot, fake_slack, fake_pagerduty):
    fake, pd = fake_slack.fake, fake_pagerduty
    incident, chan = open_from_pagerduty(bot, fake_slack)

    assert processed(bot, post_pd(bot, pd_event("incident.acknowledged")))["decision"] == "changed"
    wait_until(lambda: any("Acknowledged in PagerDuty by Alice Ops" in t for t in texts(fake, chan.id)), 10)
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | acknowledged"), 10)
    # Acknowledged twice (another delivery, other event id): illegal transition, a no-op.
    assert (
        processed(bot, post_pd(bot, pd_event("incident.acknowledged", "01EVACK-AGAIN")))["decision"] == "noop"
    )

    assert processed(bot, post_pd(bot, pd_event("incident.unacknowledged")))["decision"] == "changed"
    assert processed(bot, post_pd(bot, pd_event("incident.escalated")))["decision"] == "changed"
    assert processed(bot, post_pd(bot, pd_event("incident.reassigned")))["decision"] == "changed"
    note = post_pd(bot, pd_event("incident.annotated"))
    assert processed(bot, note)["decision"] == "changed"
    priority = pd_event("incident.priority_updated")
    priority["event"]["data"]["priority"] = {"id": "PP3", "type": "priority_reference", "summary": "P3"}
    assert processed(bot, post_pd(bot, priority))["decision"] == "changed"
    wait_until(lambda: any("Rolled back checkout-api" in t for t in texts(fake, chan.id)), 10, what="note")
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV3 | triggered"), 10, what="severity")
    wait_until(lambda: any("Escalated in PagerDuty" in t for t in texts(fake, chan.id)), 10)
    wait_until(lambda: any("Reassigned in PagerDuty" in t for t in texts(fake, chan.id)), 10)
    (note_entry,) = timeline(bot, incident.id, "note")
    assert note_entry.actor == "pagerduty:Alice Ops" and "Rolled back" in note_entry.text

    assert processed(bot, post_pd(bot, pd_event("incident.resolved")))["decision"] == "changed"
    wait_until(lambda: any("Resolved in PagerDuty by Alice Ops" in t for t in texts(fake, chan.id)), 10)
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV3 | resolved"), 10)
    assert processed(bot, post_pd(bot, pd_event("incident.reopened")))["decision"] == "changed"
    (stored,) = incidents(bot)
    assert stored.status == "triggered" and stored.open_key == f"pagerduty|{PD_ID}"
    assert [e.actor for e in timeline(bot, incident.id, "status")] == [
        "pagerduty:Alice Ops",
        "pagerduty:PagerDuty",
        "pagerduty:Alice Ops",
        "pagerduty:Bob Builder",
    ]
    idle(bot)
    assert pd.fake.calls == []  # nothing PagerDuty told us went back to it


def test_events_about_an_incident_we_do_not_know(bot, fake_slack):
    # Acknowledged arrives before triggered: open from the event's data, acknowledged.
    assert processed(bot, post_pd(bot, pd_event("incident.acknowledged")))["decision"] == "opened"
    (incident,) = incidents(bot)
    assert incident.status == "acknowledged" and incident.external_id == PD_ID
    assert processed(bot, post_pd(bot, pd_event("incident.triggered")))["decision"] == "noop"
    assert len(incidents(bot)) == 1
    # Resolved, or a note, about one we never saw: nothing to show, 200 so PagerDuty stops.
    other = pd_event("incident.resolved", "01EVRES-OTHER", id="QOTHER", html_url="https://x/incidents/QOTHER")
    assert processed(bot, post_pd(bot, other))["decision"] == "ignored_unknown_incident"
    note = pd_event("incident.annotated", "01EVNOTE-OTHER")
    note["event"]["data"]["incident"]["id"] = "QOTHER"
    assert processed(bot, post_pd(bot, note))["decision"] == "ignored_unknown_incident"
    assert len(incidents(bot)) == 1
    idle(bot)


# -- escalation through PagerDuty ----------------------------------------------------------------------


def write_rotations(path: Path, rotation: str) -> Path:
    path.mkdir()
    (path / "people.yaml").write_text(
        "people:\n  alex: {slack: U01ALEX, email: alex@example.com}\n  mike: {slack: U03MIKE}\n"
    )
    (path / "team.yaml").write_text(rotation)
    return path


def test_a_routing_key_step_triggers_then_acknowledges_and_resolves_the_pagerduty_alert(
    start_bot, fake_slack, fake_pagerduty, tmp_path
):
    rotations = write_rotations(
        tmp_path / "rotations",
        f"""
rotation: {{name: team, timezone: UTC, start: 2026-11-23T00:00, shift: 1w, layers: {{primary: [alex]}}}}
escalation:
  steps:
    - {{after: 0m, notify: [primary, {{pagerduty_routing_key: {ROUTING_KEY}}}]}}
""",
    )
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations)
    fake, pd = fake_slack.fake, fake_pagerduty.fake
    fixture = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    r = post_alertmanager(bot.url, fixture)
    incident_id = processed(bot, r)["incident"]
    dedup = f"incidentbot-{incident_id}"
    wait_until(lambda: pd.alert_status(ROUTING_KEY, dedup) == "triggered", 10, what="Events API trigger")
    (trigger,) = pd.received_events()
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "critical"
    assert "Weaviate" in trigger["payload"]["summary"]
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="the Slack page still happens")
    chan = incident_channel(fake)

    # PagerDuty's incident for our page comes back as a webhook: not a second incident.
    mirrored = pd_event("incident.triggered", "01EVOWN", id="QOWN", incident_key=dedup)
    assert processed(bot, post_pd(bot, mirrored))["decision"] == "ignored_own_page"
    assert len(incidents(bot)) == 1

    click(bot, "incident_ack", str(incident_id), "U01ALEX", chan.id)
    wait_until(lambda: pd.alert_status(ROUTING_KEY, dedup) == "acknowledged", 10, what="acknowledge event")
    click(bot, "incident_resolve", str(incident_id), "U01ALEX", chan.id)
    wait_until(lambda: pd.alert_status(ROUTING_KEY, dedup) == "resolved", 10, what="resolve event")
    assert [e["event_action"] for e in pd.received_events()] == ["trigger", "acknowledge", "resolve"]
    assert fake_pagerduty.fake.calls_to("PUT") == []  # not a PagerDuty-backed incident


def test_acknowledging_our_page_in_pagerduty_acknowledges_the_incident(
    start_bot, fake_slack, fake_pagerduty, tmp_path
):
    rotations = write_rotations(
        tmp_path / "rotations",
        f"""
rotation: {{name: team, timezone: UTC, start: 2026-11-23T00:00, shift: 1w, layers: {{primary: [alex]}}}}
escalation:
  steps:
    - {{after: 0m, notify: {{pagerduty_routing_key: {ROUTING_KEY}}}}}
""",
    )
    bot = start_bot(clock=Clock(T0), rotations_dir=rotations)
    fixture = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    incident_id = processed(bot, post_alertmanager(bot.url, fixture))["incident"]
    dedup = f"incidentbot-{incident_id}"
    wait_until(lambda: fake_pagerduty.fake.alert_status(ROUTING_KEY, dedup), 10)
    ack = pd_event("incident.acknowledged", "01EVOWNACK", id="QOWN", incident_key=dedup)
    assert processed(bot, post_pd(bot, ack))["decision"] == "changed"
    (incident,) = incidents(bot)
    assert incident.status == "acknowledged" and incident.acknowledged_by == "pagerduty:Alice Ops"
    idle(bot)
    # Not sent back: PagerDuty made this change.
    assert [e["event_action"] for e in fake_pagerduty.fake.received_events()] == ["trigger"]


PD_ROTATION = """
rotation: {name: checkout, source: pagerduty, escalation_policy_id: PEP0001}
escalation:
  steps:
    - {after: 0m, channel_mention: here}
    - {after: 15m, channel_mention: here}
"""


def test_pagerduty_sourced_rotation_pages_who_pagerduty_has_on_call(
    start_bot, fake_slack, fake_pagerduty, tmp_path
):
    fake, pd = fake_slack.fake, fake_pagerduty.fake
    fake.set_users({"pat@example.com": "U0PAT", "quinn@example.com": "U0QUINN"})
    pd.set_oncalls(
        [
            pd.oncall("PUSER1", "Pat Doe", "pat@example.com", level=1, escalation_policy_id="PEP0001"),
            pd.oncall("PUSER2", "Quinn Roe", "quinn@example.com", level=2, escalation_policy_id="PEP0001"),
            pd.oncall("PUSER9", "Other Team", "other@example.com", level=1, escalation_policy_id="PEP0009"),
        ]
    )
    bot = start_bot(clock=Clock(T0), rotations_dir=write_rotations(tmp_path / "rotations", PD_ROTATION))
    fixture = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    incident_id = processed(bot, post_alertmanager(bot.url, fixture))["incident"]
    wait_until(lambda: dms_to(fake, "U0PAT"), 10, what="level 1 paged by DM")
    (oncalls,) = pd.calls_to("GET", "/oncalls")
    assert oncalls.query["escalation_policy_ids[]"] == ["PEP0001"] and "users" in oncalls.query["include[]"]
    assert not dms_to(fake, "U0QUINN")
    chan = incident_channel(fake)
    wait_until(lambda: any("Paged <@U0PAT>" in t for t in texts(fake, chan.id)), 10)
    with db(bot) as session:
        (page,) = session.exec(select(Page)).all()
    assert (page.person, page.email, page.layer) == ("Pat Doe", "pat@example.com", "PagerDuty level 1")

    # PagerDuty goes down; 15 minutes later level 2 is paged from the last known list, with a warning.
    pd.add_fault(method="GET /oncalls", mode="error500", count=100)
    bot.clock.advance(minutes=15)
    bot.tick()
    wait_until(lambda: dms_to(fake, "U0QUINN"), 10, what="level 2 paged from the stale list")
    wait_until(
        lambda: any("last known on-call list" in t for t in texts(fake, chan.id)), 10, what="stale warning"
    )
    assert len(pd.calls_to("GET", "/oncalls")) == 2
    assert [e.text for e in timeline(bot, incident_id, "pagerduty_oncall")][-1].endswith(
        "(last known list: PagerDuty is unreachable)"
    )


def test_on_call_lookup_without_any_known_answer_warns_and_retries(
    start_bot, fake_slack, fake_pagerduty, tmp_path
):
    fake, pd = fake_slack.fake, fake_pagerduty.fake
    fake.set_users({"pat@example.com": "U0PAT"})
    pd.set_oncalls([pd.oncall("PUSER1", "Pat Doe", "pat@example.com", level=1)])
    pd.add_fault(method="GET /oncalls", mode="error500", count=1)
    bot = start_bot(clock=Clock(T0), rotations_dir=write_rotations(tmp_path / "rotations", PD_ROTATION))
    fixture = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    post_alertmanager(bot.url, fixture)
    chan = incident_channel(fake)
    wait_until(lambda: any("could not be reached" in t for t in texts(fake, chan.id)), 10, what="warning")
    assert not dms_to(fake, "U0PAT")
    bot.clock.advance(seconds=6)  # the lookup is retried after 5 s
    wait_until(lambda: dms_to(fake, "U0PAT"), 10, what="paged once PagerDuty answers")
    time.sleep(0.3)
    assert sum("could not be reached" in t for t in texts(fake, chan.id)) == 1


def test_slack_ack_is_retried_when_pagerduty_rate_limits(bot, fake_slack, fake_pagerduty):
    pd = fake_pagerduty
    pd.fake.add_incident(PD_ID, "triggered")
    incident, chan = open_from_pagerduty(bot, fake_slack)
    pd.fake.add_fault(method="PUT /incidents/*", mode="ratelimit", retry_after=1, count=1)
    join_channel(bot, fake_slack.fake, chan.id, "U01ALEX")
    click(bot, "incident_ack", str(incident.id), "U01ALEX", chan.id)
    wait_until(lambda: pd.fake.incident(PD_ID)["status"] == "acknowledged", 10, what="retried PUT")
    assert [c.status for c in puts(pd)] == [429, 200]


def oncall_text(bot, rotation: str) -> str:
    body = slash_command_body("/oncall", rotation)
    started = time.monotonic()
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert time.monotonic() - started < 3, "Slack wants an answer within 3 seconds"
    assert r.status_code == 200, r.text
    return r.json()["text"]


def test_oncall_command_shows_who_pagerduty_has_on_call(start_bot, fake_pagerduty, tmp_path):
    pd = fake_pagerduty.fake
    pd.set_oncalls(
        [
            pd.oncall("PUSER1", "Pat Doe", "alex@example.com", level=1, end="2026-11-24T09:00:00Z"),
            pd.oncall("PUSER2", "Quinn <!channel> Roe", "quinn@example.com", level=2),
            pd.oncall("PUSER9", "Other Team", "other@example.com", level=1, escalation_policy_id="PEP0009"),
        ]
    )
    bot = start_bot(clock=Clock(T0), rotations_dir=write_rotations(tmp_path / "rotations", PD_ROTATION))
    text = oncall_text(bot, "checkout")
    # Pat's email is alex's in people.yaml, so Slack shows a mention; names from PagerDuty are escaped.
    # "until" is a <!date^...> each reader sees in their own zone, the rotation's zone as its fallback
    # (issue 17, item 10; changed on purpose from the plain rotation-zone text).
    assert "level 1: <@U01ALEX> until <!date^1795510800^" in text, text
    assert "|Tue Nov 24 09:00 UTC>" in text, text
    assert "level 2: Quinn &lt;!channel&gt; Roe (always on call)" in text, text
    assert "Other Team" not in text and "<!channel>" not in text
    assert oncall_text(bot, "checkout") == text
    assert len(pd.calls_to("GET", "/oncalls")) == 1, "answers are cached for a minute"

    # Past the cache, PagerDuty is down: the last known list, marked as such.
    pd.add_fault(method="GET /oncalls", mode="error500", count=100)
    bot.clock.advance(minutes=2)
    stale = oncall_text(bot, "checkout")
    assert "level 2: Quinn" in stale and "last known list: PagerDuty is unreachable" in stale, stale


def test_oncall_command_says_when_pagerduty_cannot_be_read(start_bot, fake_pagerduty, tmp_path):
    fake_pagerduty.fake.add_fault(method="GET /oncalls", mode="error500", count=100)
    bot = start_bot(clock=Clock(T0), rotations_dir=write_rotations(tmp_path / "rotations", PD_ROTATION))
    text = oncall_text(bot, "")
    assert "*checkout*" in text and "PagerDuty's on-call could not be read" in text, text
