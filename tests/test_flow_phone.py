"""SMS and voice through Twilio, through the real bot over HTTP: pages by SMS after a rule's delay,
replies that acknowledge or escalate (signed by the fake Twilio as Twilio signs them), calls whose
key escalates, and everything that must change nothing: a bad signature, an unknown code, a
forged callback."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.store.tables import Incident
from tests.fakenotify import FakeNtfy, FakeTwilio
from tests.fakenotify.twilio import signature, twiml_message, twiml_said
from tests.harness import post_alertmanager, processed, wait_until
from tests.notify_support import FIXTURES, PUBLIC, T0, fire, notifications, start, timeline, wait_line

ALEX = "+14155550100"
SMS_WEBHOOK = f"{PUBLIC}/webhooks/twilio/sms"


@pytest.fixture
def twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def ntfy():
    with FakeNtfy() as fake:
        yield fake


def people(rules: str) -> str:
    return f"""
people:
  alex:
    slack: U01ALEX
    phone: "{ALEX}"
    ntfy: alex-pages
    notify: {rules}
  sarah: {{email: sarah@example.com}}
  mike:  {{slack: U03MIKE}}
"""


def boot(start_bot, tmp_path, twilio, rules: str, **kw):
    return start(start_bot, tmp_path, people=people(rules), **twilio.settings(), **kw)


def status_of(bot, incident: int) -> str:
    from sqlmodel import Session

    with Session(bot.ctx.engine) as session:
        found = session.get(Incident, incident)
        assert found is not None
        return found.status


def fire_other(bot) -> int:
    """A second, unrelated SEV1 (another alert group)."""
    payload = json.loads((FIXTURES / "alertmanager-0.25" / "firing-single-alert.json").read_text())
    payload["groupKey"] = '{}:{alertname="CheckoutDown"}'
    payload["groupLabels"] = {"alertname": "CheckoutDown"}
    payload["commonLabels"] = {**payload["commonLabels"], "alertname": "CheckoutDown", "service": "checkout"}
    payload["commonAnnotations"] = {"summary": "Checkout is down"}
    alert = payload["alerts"][0]
    alert.update(
        labels=payload["commonLabels"], annotations={"summary": "Checkout is down"}, fingerprint="c0ffee"
    )
    r = post_alertmanager(bot.url, payload)
    assert r.status_code == 202, r.text
    return int(processed(bot, r)["incident"])


def test_sev1_at_night_reaches_the_primary_by_ntfy_at_once_and_sms_later_and_a_reply_acknowledges(
    start_bot, fake_slack, twilio, ntfy, tmp_path
):
    # alex sleeps in Slack's Do Not Disturb: Slack at 0m, ntfy at 1m, SMS at 3m.
    fake_slack.fake.set_dnd("U01ALEX", start=T0.timestamp() - 5 * 3600, end=T0.timestamp() + 5 * 3600)
    rules = "[{after: 0m, via: slack}, {after: 1m, via: ntfy}, {after: 3m, via: sms}]"
    bot = boot(start_bot, tmp_path, twilio, rules, ntfy=ntfy)
    incident = fire(bot, fake_slack)
    ntfy.wait_for(1, topic="alex-pages")  # DND: ntfy at once, not at 1m
    assert not twilio.messages
    # (Recorded before the clock jumps: a jump past the outbox lease would send it again.)
    wait_until(lambda: timeline(bot, incident, "notified"), 10, what="ntfy recorded")

    bot.clock.advance(minutes=2, seconds=50)
    bot.tick()
    assert not twilio.messages  # the SMS keeps its own time: 3 minutes after the page
    bot.clock.advance(seconds=15)
    bot.tick()
    sms = twilio.wait_for_messages(1)[0]
    assert sms.to == ALEX and sms.segments == 1
    assert sms.body == f"SEV1 incident #{incident}: Weaviate is down\nReply 1 to acknowledge, 2 to escalate"
    wait_until(lambda: notifications(bot)[-1].status == "sent", 10, what="the SMS recorded")

    answer = twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    assert twiml_message(answer.text) == f"You acknowledged incident #{incident}; escalation stopped."
    status = timeline(bot, incident, "status")
    assert [e.text for e in status] == ["triggered -> acknowledged (via SMS reply)"]
    assert status[0].actor == "slack:U01ALEX" and status[0].data["via"] == "sms"
    wait_line(fake_slack, r"Acknowledged by <@U01ALEX> .*\(via SMS reply\)")

    # Escalation stopped: sarah's step (15m) and the manager's (30m) never come.
    bot.clock.advance(minutes=45)
    bot.tick()
    bot.tick()
    assert [e.data.get("step") for e in timeline(bot, incident, "escalation")] == ["c0r0s0"]
    assert len(twilio.messages) == 1 and len(ntfy.accepted()) == 1

    # Another "1" later says why nothing happens.
    again = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1").text)
    assert again == f"You have no open page (#{incident} is acknowledged). Nothing was changed."
    assert len(timeline(bot, incident, "status")) == 1


def test_a_replayed_sms_reply_escalates_once(start_bot, fake_slack, twilio, tmp_path):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: [slack, sms]}]")
    incident = fire(bot, fake_slack)
    twilio.wait_for_messages(1)
    first = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "2", sid="SM" + "7" * 32).text)
    assert first == f"Incident #{incident}: Escalated: paging step 2 now."
    replayed = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "2", sid="SM" + "7" * 32).text)
    assert replayed == "This reply was already handled."
    assert [e.text for e in timeline(bot, incident, "escalate")] == [
        "Escalated by hand to step 2 (via SMS reply)"
    ]


def test_a_call_reads_the_incident_and_the_key_2_escalates_once(start_bot, fake_slack, twilio, tmp_path):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: [slack, voice]}]")
    incident = fire(bot, fake_slack)
    call = twilio.wait_for_calls(1)[0]
    assert call.to == ALEX
    assert f"Incident {incident}, severity 1: Weaviate is down." in call.said[0]
    assert call.gather_url and call.gather_url.startswith(f"{PUBLIC}/webhooks/twilio/voice?page=")

    wrong = twilio.press(bot.url, call, "7")  # any other key: the choices again
    assert wrong.status_code == 200 and "Press 1 to acknowledge" in " ".join(twiml_said(wrong.text))
    assert '<Gather action="https://bot.example.com/webhooks/twilio/voice?page=' in wrong.text

    escalated = twilio.press(bot.url, call, "2")
    assert escalated.status_code == 200
    assert twiml_said(escalated.text) == [f"Incident {incident}: Escalated: paging step 2 now. Goodbye."]
    assert "<Hangup" in escalated.text
    entry = timeline(bot, incident, "escalate")
    assert [e.text for e in entry] == ["Escalated by hand to step 2 (via voice call)"]
    assert entry[0].actor == "slack:U01ALEX"
    wait_until(
        lambda: any(
            p.args.get("users") == "U02SARAH" for p in fake_slack.fake.calls_to("conversations.open")
        ),
        10,
    )

    again = twilio.press(bot.url, call, "2")  # the same call, the same key: once is enough
    assert "already answered" in " ".join(twiml_said(again.text))
    assert len(timeline(bot, incident, "escalate")) == 1
    assert status_of(bot, incident) == "triggered"


def test_requests_without_twilios_signature_change_nothing(start_bot, fake_slack, twilio, tmp_path):
    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: [slack, sms, voice]}]")
    incident = fire(bot, fake_slack)
    call = twilio.wait_for_calls(1)[0]
    twilio.wait_for_messages(1)

    forged = twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1", sign="bm90IGEgc2lnbmF0dXJl")
    assert forged.status_code == 401
    assert twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1", sign="").status_code == 401
    other_token = signature("another-auth-token", SMS_WEBHOOK, [("From", ALEX), ("Body", "1")])
    assert twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1", sign=other_token).status_code == 401
    assert twilio.press(bot.url, call, "1", sign="bm90IGEgc2lnbmF0dXJl").status_code == 401
    # Signed by Twilio for another URL (the path changed on the way): refused too.
    voice_url = f"{PUBLIC}/webhooks/twilio/voice"
    moved = twilio.reply_sms(bot.url, voice_url, ALEX, "1", path="/webhooks/twilio/sms")
    assert moved.status_code == 401
    bad = httpx.post(f"{bot.url}/webhooks/twilio/sms", content=b"\xff\xfe", timeout=10)
    assert bad.status_code == 401

    # Signed by Twilio, but the page token is not one of ours: the digit changes nothing.
    call.gather_url = call.gather_url.rsplit("=", 1)[0] + "=forged.token"
    refused = twilio.press(bot.url, call, "1")
    assert refused.status_code == 200 and "can no longer be answered" in " ".join(twiml_said(refused.text))
    assert not timeline(bot, incident, "status") and status_of(bot, incident) == "triggered"


def test_unknown_codes_and_strangers_get_a_clear_answer_and_change_nothing(
    start_bot, fake_slack, twilio, tmp_path
):
    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: [slack, sms]}]")
    incident = fire(bot, fake_slack)
    twilio.wait_for_messages(1)

    unknown = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1 99999").text)
    assert (
        unknown
        and "You have no open page for incident #99999" in unknown
        and "Nothing was changed" in unknown
    )
    help_text = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "what is this").text)
    assert help_text and help_text.startswith("Reply 1 to acknowledge or 2 to escalate")
    stranger = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, "+14155559999", "1").text)
    assert stranger == "This number is not in incidentbot's people list. Nothing was changed."
    assert not timeline(bot, incident, "status") and status_of(bot, incident) == "triggered"

    from bot.service import responders

    responders.resolve(bot.ctx, incident, "slack:U01ALEX")
    late = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, f"1 {incident}").text)
    assert late == f"Incident #{incident} is already resolved. Nothing was changed."
    bare = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1").text)
    assert bare == f"You have no open page (#{incident} is resolved). Nothing was changed."


def test_with_several_open_pages_the_sms_carries_a_code_and_a_bare_reply_asks_which(
    start_bot, fake_slack, twilio, tmp_path
):
    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: [slack, sms]}]")
    first = fire(bot, fake_slack)
    assert twilio.wait_for_messages(1)[0].body.endswith("Reply 1 to acknowledge, 2 to escalate")
    second = fire_other(bot)
    coded = twilio.wait_for_messages(2)[1]
    assert coded.body == (
        f"SEV1 incident #{second}: Checkout is down\nReply 1 {second} to acknowledge, 2 {second} to escalate"
    )
    assert coded.segments == 1

    which = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1").text)
    assert which and f"You have 2 open pages (#{first} SEV1 Weaviate is down, #{second}" in which
    assert "Which one?" in which and "Nothing was changed" in which
    assert status_of(bot, first) == status_of(bot, second) == "triggered"

    done = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, f"1 {second}").text)
    assert done == f"You acknowledged incident #{second}; escalation stopped."
    assert (status_of(bot, first), status_of(bot, second)) == ("triggered", "acknowledged")
    # One page left open: a bare reply is unambiguous again.
    last = twiml_message(twilio.reply_sms(bot.url, SMS_WEBHOOK, ALEX, "1").text)
    assert last == f"You acknowledged incident #{first}; escalation stopped."


def test_an_invalid_number_falls_through_to_the_next_rule_at_once(
    start_bot, fake_slack, twilio, ntfy, tmp_path
):
    twilio.invalid(ALEX)
    rules = "[{after: 0m, via: [slack, sms]}, {after: 10m, via: ntfy}]"
    bot = boot(start_bot, tmp_path, twilio, rules, ntfy=ntfy)
    incident = fire(bot, fake_slack)
    ntfy.wait_for(1, topic="alex-pages")  # no 10-minute wait
    line = wait_line(fake_slack, r"Could not reach <@U01ALEX> by SMS")[0]
    assert "HTTP 400: The 'To' number …0100 is not a valid phone number (Twilio error 21211)" in line
    assert "trying ntfy now" in line and ALEX not in line
    failed = timeline(bot, incident, "notify_failed")
    assert failed[0].data["method"] == "sms" and failed[0].data["next"] == "ntfy"
    assert [(n.method, n.status) for n in notifications(bot)] == [
        ("slack", "sent"),
        ("sms", "failed"),
        ("ntfy", "sent"),
    ]
    metrics = httpx.get(f"{bot.url}/metrics", timeout=10).text
    assert 'incidentbot_notifications_total{method="sms",outcome="failed"}' in metrics


def test_twilio_down_is_retried_inside_the_rule_window(start_bot, fake_slack, twilio, tmp_path):
    twilio.fail(503, times=2)
    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: [slack, sms]}, {after: 10m, via: ntfy}]")
    incident = fire(bot, fake_slack)
    sms = twilio.wait_for_messages(1, timeout=30)[0]  # after two 503s, backed off
    assert sms.to == ALEX and len(twilio.refusals) == 2
    wait_until(lambda: any(n.method == "sms" and n.status == "sent" for n in notifications(bot)), 10)
    assert not timeline(bot, incident, "notify_failed")


def test_a_test_page_by_sms_and_voice_and_the_key_1_confirms_calls_work(
    start_bot, fake_slack, twilio, tmp_path
):
    from sqlmodel import Session, select

    from bot.store.tables import Notification
    from tests.harness import slack_headers, slash_command_body

    bot = boot(start_bot, tmp_path, twilio, "[{after: 0m, via: slack}]")
    body = slash_command_body("/oncall", "test-page", user="U01ALEX")
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200 and "sms, voice" in r.text, r.text
    sms = twilio.wait_for_messages(1)[0]
    assert sms.body.startswith("TEST page from incidentbot for alex by sms. Confirm it works: https://")
    call = twilio.wait_for_calls(1)[0]
    assert "This is a test page from incident bot for alex." in call.said[0]
    confirmed = twilio.press(bot.url, call, "1")
    assert "Thank you: calls reach you." in " ".join(twiml_said(confirmed.text))
    with Session(bot.ctx.engine) as session:
        voice = session.exec(select(Notification).where(Notification.method == "voice")).one()
    assert voice.confirmed_at is not None
