"""Working an incident from Slack: every /incident subcommand through the signed endpoint."""

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.harness import (
    Clock,
    block_action_body,
    post_alertmanager,
    slack_event,
    slack_headers,
    slash_command_body,
    trigger_id,
    wait_until,
)
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def slash(bot, text: str, channel: str = "C0GENERAL", user: str = "U01ALEX", command: str = "/incident"):
    body = slash_command_body(command, text, user=user, channel=channel)
    started = time.monotonic()
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert time.monotonic() - started < 3, "Slack wants an answer within 3 seconds"
    assert r.status_code == 200, r.text
    return r.json().get("text", "") if r.content else ""


@pytest.fixture
def bot(start_bot, fake_slack):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", archive_after="1h")


def incident_channel(fake):
    return wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        15,
        what="incident channel",
    )


def texts(fake, chan):
    return [m.get("text", "") for m in fake.messages(chan.id)]


def test_help_unknown_and_wrong_place(bot):
    assert "/incident declare <title>" in slash(bot, "help")
    unknown = slash(bot, "frobnicate")
    assert "Unknown subcommand `frobnicate`" in unknown and "/incident status" in unknown
    assert "works in an incident channel" in slash(bot, "ack", channel="C0GENERAL")
    assert "works in an incident channel" in slash(bot, "note hello", channel="C0GENERAL")


def test_declare_and_work_an_incident_end_to_end(bot, fake_slack):
    fake = fake_slack.fake
    answer = slash(bot, "declare Checkout is failing for EU users sev1")
    assert "declared (SEV1)" in answer
    chan = incident_channel(fake)
    assert chan.name.endswith("checkout-is-failing-for-eu-users")
    wait_until(lambda: "U01ALEX" in fake.channel(chan.id).members, 10)  # the declarer is invited (and paged)
    c = chan.id

    status = slash(bot, "status", channel=c)
    assert "State: *triggered*" in status and "Paged:" in status and "next escalation step in 14m 5" in status
    assert "Severity is now SEV2" in slash(bot, "sev 2", channel=c)
    assert "Severity must be 1, 2 or 3" in slash(bot, "sev 7", channel=c)
    assert "<@U02SARAH> leads" in slash(bot, "lead <@U02SARAH|sarah>", channel=c)
    assert "Mention a person" in slash(bot, "lead sarah", channel=c)
    slash(bot, "note <!channel> rolled back the deploy", channel=c)
    slash(bot, "action Add an alert on checkout latency", channel=c)
    wait_until(
        lambda: any("Note from <@U01ALEX>: &lt;!channel&gt; rolled back" in t for t in texts(fake, chan)), 10
    )
    wait_until(lambda: any("Action item from" in t for t in texts(fake, chan)), 10)
    assert "Paging <@U03MIKE>" in slash(bot, "page <@U03MIKE>", channel=c)
    wait_until(lambda: dms_to(fake, "U03MIKE"), 10, what="manual page DM")
    # alex, platform's first step, was paged when the incident opened and has not acknowledged: not
    # paged again (issue 17, item 12; changed on purpose from "Paging alex (platform)").
    answer = slash(bot, "page platform", channel=c)
    assert "alex was already paged" in answer and "not paging again" in answer, answer
    assert "There is no rotation" in slash(bot, "page nosuch", channel=c) or "Page whom?" in slash(
        bot, "page nosuch", channel=c
    )
    assert "Escalated" in slash(bot, "escalate", channel=c)
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="escalated to the secondary")
    assert "You acknowledged" in slash(bot, "ack", channel=c)
    assert "Already acknowledged by <@U01ALEX>" in slash(bot, "ack", channel=c)
    assert "resolve it first" in slash(bot, "close", channel=c)
    timeline = slash(bot, "timeline", channel=c)
    assert "rolled back the deploy" in timeline and "Severity SEV1 -&gt; SEV2" in timeline
    assert "You resolved" in slash(bot, "resolve fixed by rollback", channel=c)
    wait_until(lambda: any("Resolved by <@U01ALEX>: fixed by rollback" in t for t in texts(fake, chan)), 10)
    assert "already resolved" in slash(bot, "resolve", channel=c)
    assert "No open incidents" in slash(bot, "list")
    assert "reopened" in slash(bot, "reopen", channel=c)
    listed = slash(bot, "list")
    assert "1 open incident" in listed and "Checkout is failing" in listed


def test_illegal_transitions_answer_clearly(bot, fake_slack):
    slash(bot, "declare Disk full sev3")
    chan = incident_channel(fake_slack.fake)
    assert "resolve it first" in slash(bot, "close", channel=chan.id)
    assert "cannot reopen an incident that is triggered" in slash(bot, "reopen", channel=chan.id)
    assert "resolve it first" in slash(bot, "postmortem", channel=chan.id)
    slash(bot, "resolve", channel=chan.id)
    assert "closed" in slash(bot, "close", channel=chan.id)
    assert "cannot close an incident that is closed" in slash(bot, "close", channel=chan.id)
    assert "reopened" in slash(bot, "reopen", channel=chan.id)


def test_close_archives_the_channel_later(bot, fake_slack):
    fake = fake_slack.fake
    slash(bot, "declare Queue backlog sev3")
    chan = incident_channel(fake)
    slash(bot, "resolve", channel=chan.id)
    assert "archived in 1h" in slash(bot, "close", channel=chan.id)
    bot.clock.advance(minutes=59)
    bot.tick()
    assert not fake.channel(chan.id).archived
    bot.clock.advance(minutes=2)
    wait_until(lambda: fake.channel(chan.id).archived, 10, what="archived after ARCHIVE_AFTER")


def test_pins_and_pushpin_reactions_join_the_timeline_once(bot, fake_slack):
    fake = fake_slack.fake
    slash(bot, "declare Latency spike sev2")
    chan = incident_channel(fake)
    msg = fake.add_message(chan.id, "p99 back to 200ms after scaling out", user="U02SARAH")
    ts = msg["ts"] if isinstance(msg, dict) else msg
    for event in (
        {
            "type": "pin_added",
            "user": "U01ALEX",
            "channel_id": chan.id,
            "item": {
                "type": "message",
                "channel": chan.id,
                "message": {"ts": ts, "user": "U02SARAH", "text": "p99 back to 200ms after scaling out"},
            },
            "event_ts": str(time.time()),
        },
        {
            "type": "reaction_added",
            "user": "U01ALEX",
            "reaction": "pushpin",
            "item_user": "U02SARAH",
            "item": {"type": "message", "channel": chan.id, "ts": ts},
            "event_ts": str(time.time()),
        },
    ):
        slack_event(bot, event)
    wait_until(lambda: "p99 back to 200ms" in slash(bot, "timeline", channel=chan.id), 10)
    assert slash(bot, "timeline", channel=chan.id).count("p99 back to 200ms") == 1


def declare_form_body(title: str, user: str = "U01ALEX", severity: str = "SEV1") -> bytes:
    """The declare form submitted as Slack sends it (a view_submission with the form's values)."""
    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEAM"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "x",
        "trigger_id": trigger_id(),
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "declare_incident",
            "team_id": "T0TEAM",
            "state": {
                "values": {
                    "title": {"title": {"type": "plain_text_input", "value": title}},
                    "severity": {
                        "severity": {
                            "type": "static_select",
                            "selected_option": {
                                "value": severity,
                                "text": {"type": "plain_text", "text": severity},
                            },
                        }
                    },
                    "description": {"description": {"type": "plain_text_input", "value": "since 11:58"}},
                    "rotation": {
                        "rotation": {
                            "type": "static_select",
                            "selected_option": {
                                "value": "platform",
                                "text": {"type": "plain_text", "text": "platform"},
                            },
                        }
                    },
                }
            },
        },
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_declare_modal_opens_and_submits(bot, fake_slack):
    fake = fake_slack.fake
    slash(bot, "declare")
    call = fake.wait_for_call("views.open", timeout=10)[0]
    view = call.args["view"]
    assert view["callback_id"] == "declare_incident"
    body = declare_form_body("Payments API 500s")
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200
    chan = incident_channel(fake)
    assert chan.name.endswith("payments-api-500s")
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | triggered | Payments API 500s"), 10)


def test_oncall_command(bot):
    text = slash(bot, "", command="/oncall")
    assert "platform" in text and "primary: <@U01ALEX>" in text
    assert "There is no rotation named 'nope'" in slash(bot, "nope", command="/oncall")


def card_actions(fake) -> set[str]:
    chan = incident_channel(fake)
    card = next(m for m in fake.messages(chan.id) if m["ts"] == chan.pins[0])
    return {e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]}


def test_alertmanager_incident_card_has_silence_buttons(start_bot, fake_slack):
    bot = start_bot(
        clock=Clock(T0), rotations_dir=FIXTURES / "rotations", alertmanager_url="http://127.0.0.1:9"
    )
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    post_alertmanager(bot.url, payload)
    assert {
        "incident_ack",
        "incident_escalate",
        "incident_resolve",
        "incident_silence_1h",
        "incident_silence_4h",
    } <= card_actions(fake_slack.fake)


def test_no_silence_buttons_without_an_alertmanager_api(bot, fake_slack):
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    post_alertmanager(bot.url, payload)
    actions = card_actions(fake_slack.fake)
    assert "incident_ack" in actions and not any(a.startswith("incident_silence") for a in actions)


# A channel name taken in Slack outside the bot (another install, a person, an old database) is
# retried as `<name>-N`. Found by audit: the retry stripped a trailing number as if it were a
# suffix, so "502" failed forever and "Error rate above 5" became "...-above-2".
def _take(fake, name: str):
    channel = fake.create_channel(name)
    channel.creator = "U0SOMEONE"  # not ours: the bot must not adopt it
    return channel


def test_declared_title_of_only_digits_gets_a_channel_when_the_name_is_taken(bot, fake_slack):
    fake = fake_slack.fake
    _take(fake, "inc-20261123-502")
    assert "declared" in slash(bot, "declare 502 sev1")
    wait_until(
        lambda: any(c.name.startswith("inc-20261123-502-") for c in fake.channels.values()),
        15,
        what="a -2 channel for the incident titled '502'",
    )


def test_title_ending_in_digits_keeps_its_digits_in_the_suffixed_name(bot, fake_slack):
    fake = fake_slack.fake
    _take(fake, "inc-20261123-error-rate-above-5")
    assert "declared" in slash(bot, "declare Error rate above 5 sev2")
    created = wait_until(
        lambda: [
            c.name for c in fake.channels.values() if c.creator != "U0SOMEONE" and c.name.startswith("inc-")
        ],
        15,
        what="incident channel",
    )
    assert created == ["inc-20261123-error-rate-above-5-2"], created


# Buttons and /incident are answered within Slack's 3 seconds even when the database is busy (a
# storm of webhooks, a big alert group): found by audit, they acked only after the use case, and
# Slack gave up (404) while a writer held SQLite's lock.
def _hold_write_lock(path: str, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")  # another writer (e.g. a 200-alert webhook) is busy
    started.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def _busy(bot, seconds: float = 4.0) -> threading.Thread:
    started = threading.Event()
    path = bot.ctx.engine.url.database
    thread = threading.Thread(target=_hold_write_lock, args=(path, seconds, started), daemon=True)
    thread.start()
    started.wait(5)
    return thread


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_acknowledge_button_is_acked_within_3s_while_the_database_is_busy(bot, fake_slack):
    assert "declared" in slash(bot, "declare Checkout down sev1")
    chan = incident_channel(fake_slack.fake)
    with bot.ctx.engine.connect() as conn:
        incident_id = conn.exec_driver_sql("select id from incident").scalar()
    holder = _busy(bot)
    body = block_action_body("incident_ack", str(incident_id), user="U01ALEX", channel=chan.id)
    started = time.monotonic()
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=20)
    elapsed = time.monotonic() - started
    holder.join()
    assert r.status_code == 200 and elapsed < 3, f"answered {r.status_code} after {elapsed:.1f}s"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slash_command_answer_is_not_lost_while_the_database_is_busy(bot, fake_slack):
    assert "declared" in slash(bot, "declare Checkout down sev1")
    chan = incident_channel(fake_slack.fake)
    holder = _busy(bot)
    body = slash_command_body("/incident", "ack", user="U01ALEX", channel=chan.id)
    started = time.monotonic()
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=20)
    elapsed = time.monotonic() - started
    holder.join()
    assert r.status_code == 200 and elapsed < 3, f"answered {r.status_code} after {elapsed:.1f}s: {r.text}"
