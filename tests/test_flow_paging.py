"""Paging and escalation through the real endpoints: page -> no ack -> escalate -> ack -> quiet."""

import copy
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.harness import Clock, block_action_body, post_alertmanager, processed, slack_headers, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "alertmanager-0.25" / name).read_text())


def dms_to(fake, user: str) -> list:
    """Page DMs that reached `user` (chat.postMessage into their DM channel)."""
    dm = next((c.id for c in fake.channels.values() if c.is_im and c.user == user), None)
    return [c for c in fake.calls_to("chat.postMessage") if dm and c.args.get("channel") == dm and c.ok]


def click(bot, action_id: str, value: str, user: str, channel: str = "C0GENERAL") -> httpx.Response:
    body = block_action_body(action_id, value, user=user, channel=channel)
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text
    return r


@pytest.fixture
def paging_bot(start_bot, fake_slack):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")


def open_incident(bot, fake) -> tuple[int, object]:
    r = post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    assert r.status_code == 202, r.text
    incident = processed(bot, r)["incident"]
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="page DM to the primary")
    chan = next(c for c in fake.channels.values() if c.name.startswith("inc-"))
    return incident, chan


def test_page_escalate_ack_then_nothing_more_fires(paging_bot, fake_slack):
    bot, fake = paging_bot, fake_slack.fake
    incident, chan = open_incident(bot, fake)

    page = dms_to(fake, "U01ALEX")[0]
    blocks = json.dumps(page.args["blocks"])
    assert "You are paged" in blocks and "Weaviate is down" in blocks
    # The page never waits for the channel: it names it, and gets the link once the channel exists.
    assert f"<#{chan.id}>" in blocks or f"#{chan.name}" in blocks
    wait_until(
        lambda: (
            f"<#{chan.id}>" in blocks
            or any(
                f"<#{chan.id}>" in json.dumps(c.args.get("blocks"))
                for c in fake.calls_to("chat.update")
                if c.args.get("channel") == page.args["channel"]
            )
        ),
        10,
        what="DM links the channel",
    )
    assert {"incident_ack", "incident_escalate"} <= {
        e["action_id"] for b in page.args["blocks"] if b["type"] == "actions" for e in b["elements"]
    }
    wait_until(lambda: "U01ALEX" in fake.channel(chan.id).members, 10, what="primary invited")
    wait_until(lambda: any("Paged <@U01ALEX>" in m.get("text", "") for m in fake.messages(chan.id)), 10)

    # 14 minutes: nothing yet. 15 minutes: the secondary (email-only, looked up) is paged.
    bot.clock.advance(minutes=14)
    bot.tick()
    assert not dms_to(fake, "U02SARAH")
    bot.clock.advance(minutes=1)
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="escalation to the secondary")
    assert len(fake.calls_to("users.lookupByEmail")) == 1

    # The secondary acknowledges from the DM.
    bot.clock.advance(minutes=2, seconds=13)
    dm = dms_to(fake, "U02SARAH")[0].args["channel"]
    click(bot, "incident_ack", str(incident), "U02SARAH", channel=dm)
    wait_until(
        lambda: any(
            re.search(r"Acknowledged by <@U02SARAH> after 17m 1\ds", m.get("text", ""))
            for m in fake.messages(chan.id)
        ),
        10,
        what="ack message",
    )
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | acknowledged"), 10)
    # The page DMs lose their buttons and say who acknowledged.
    wait_until(
        lambda: any(
            "Acknowledged by" in json.dumps(c.args.get("blocks"))
            for c in fake.calls_to("chat.update")
            if c.args.get("channel") == dm
        ),
        10,
    )

    # A second click answers politely and changes nothing.
    before = len(fake.messages(chan.id))
    click(bot, "incident_ack", str(incident), "U01ALEX", channel=chan.id)
    wait_until(
        lambda: any("Already acknowledged" in e.get("text", "") for e in fake.channel(chan.id).ephemeral),
        10,
        what="polite answer",
    )

    # Long after: the manager step never fires.
    bot.clock.advance(hours=2)
    bot.tick()
    bot.tick()
    assert not dms_to(fake, "U03MIKE")
    assert len(dms_to(fake, "U01ALEX")) == 1 and len(dms_to(fake, "U02SARAH")) == 1
    assert len(fake.messages(chan.id)) == before


def test_escalate_now_pages_the_next_step_at_once_and_final_notice_follows(paging_bot, fake_slack):
    bot, fake = paging_bot, fake_slack.fake
    incident, chan = open_incident(bot, fake)
    click(bot, "incident_escalate", str(incident), "U01ALEX", channel=chan.id)
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="escalate now -> secondary")
    # The rest of the plan keeps its gaps from now: the manager is due 15 minutes later.
    bot.clock.advance(minutes=14)
    bot.tick()
    assert not dms_to(fake, "U03MIKE")
    bot.clock.advance(minutes=1)
    wait_until(lambda: dms_to(fake, "U03MIKE"), 10, what="manager page")
    wait_until(lambda: any(m.get("text", "").startswith("<!here>") for m in fake.messages(chan.id)), 10)
    # After the last step, one more wait, then the final notice.
    bot.clock.advance(minutes=15)
    wait_until(
        lambda: any("Nobody has acknowledged" in m.get("text", "") for m in fake.messages(chan.id)), 10
    )


def test_resolution_stops_escalation(paging_bot, fake_slack):
    bot, fake = paging_bot, fake_slack.fake
    incident, chan = open_incident(bot, fake)
    click(bot, "incident_resolve", str(incident), "U01ALEX", channel=chan.id)
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | resolved"), 10)
    bot.clock.advance(hours=1)
    bot.tick()
    assert not dms_to(fake, "U02SARAH")


def test_bad_signature_and_stale_timestamp_are_rejected(paging_bot):
    body = block_action_body("incident_ack", "1", user="U01ALEX")
    bad = httpx.post(
        f"{paging_bot.url}/slack/events", content=body, headers=slack_headers(body, secret="wrong"), timeout=5
    )
    assert bad.status_code == 401
    import time

    stale = httpx.post(
        f"{paging_bot.url}/slack/events",
        content=body,
        headers=slack_headers(body, timestamp=int(time.time()) - 6 * 60),
        timeout=5,
    )
    assert stale.status_code == 401


# The pinned card survives hostile-but-real alert groups (Block Kit limits); found by audit.
def test_card_is_posted_when_group_labels_are_long(paging_bot, fake_slack):
    """`group_by: ['...']` makes every label a group label; one long label (a pod spec, a query,
    an image list: 3.5 kB here) makes the "Open in Alertmanager" link longer than a context
    element allows, and Slack refuses the whole card: no card, no buttons, ever."""
    fake = fake_slack.fake
    payload = copy.deepcopy(fixture("firing-single-alert.json"))
    long_value = "v" * 3500
    payload["groupLabels"]["query"] = long_value
    payload["commonLabels"]["query"] = long_value
    payload["alerts"][0]["labels"]["query"] = long_value
    payload["groupKey"] = '{}:{alertname="WeaviateDown", query="...", service="weaviate"}'
    r = post_alertmanager(paging_bot.url, payload)
    assert r.status_code == 202, r.text
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        15,
        what="the pinned card",
    )
    failed = [(c.method, (c.response or {}).get("error")) for c in fake.calls if not c.ok]
    assert not failed, failed
    assert chan.pins


# A page reaches the person whatever the alert says. Found by audit: the DM's `text` (and the
# card's fallback text) carried the whole escaped summary, uncut; past 40,000 characters Slack answers
# msg_too_long, a permanent error, and the page was dropped. Titles are now cut to TITLE_MAX.
def test_page_dm_survives_a_huge_summary(paging_bot, fake_slack):
    fake = fake_slack.fake
    payload = copy.deepcopy(fixture("firing-single-alert.json"))
    summary = "Disk almost full on /var/lib/data (" + "x" * 41_000 + ")"
    payload["commonAnnotations"]["summary"] = summary
    payload["alerts"][0]["annotations"]["summary"] = summary
    r = post_alertmanager(paging_bot.url, payload)
    assert r.status_code == 202, r.text
    wait_until(lambda: fake.calls_to("chat.postMessage"), 10, what="any post")
    try:
        wait_until(lambda: dms_to(fake, "U01ALEX"), 8, what="page DM")
    except AssertionError:
        failed = [(c.method, (c.response or {}).get("error")) for c in fake.calls if not c.ok]
        raise AssertionError(f"the page DM was never delivered; failed calls: {failed}") from None


# The card's buttons do what they say in every state they are shown in (found by audit: Escalate
# stayed on an acknowledged card and only refused; Silence showed with no ALERTMANAGER_URL, and the
# silence then failed with nobody told).
def _card_blocks(fake, chan):
    pinned = chan.pins[0]
    updates = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == pinned and c.ok]
    if updates:
        return updates[-1].args["blocks"]
    return next(m for m in fake.messages(chan.id) if m["ts"] == pinned)["blocks"]


def _action_ids(blocks):
    return {e.get("action_id") for b in blocks if b.get("type") == "actions" for e in b["elements"]}


def _open(bot, fake):
    r = post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    assert r.status_code == 202, r.text
    incident = processed(bot, r)["incident"]
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        15,
        what="incident channel with its card",
    )
    return incident, chan


def _answers(fake, chan, user="U01ALEX"):
    return [m["text"] for m in fake.channel(chan.id).ephemeral if m.get("ephemeral_user") == user]


def test_escalate_button_shown_after_acknowledge_works(paging_bot, fake_slack):
    """After Acknowledge the card still offers Escalate; clicking it must not just refuse."""
    fake = fake_slack.fake
    incident, chan = _open(paging_bot, fake)
    click(paging_bot, "incident_ack", str(incident), "U01ALEX", chan.id)
    wait_until(lambda: "incident_ack" not in _action_ids(_card_blocks(fake, chan)), 10, what="card updated")
    shown = _action_ids(_card_blocks(fake, chan))
    click(paging_bot, "incident_escalate", str(incident), "U01ALEX", chan.id)
    answer = wait_until(lambda: _answers(fake, chan)[-1:] or None, 10, what="answer")[0]
    assert not ("incident_escalate" in shown and "escalation only runs while unacknowledged" in answer), (
        f"card offers {sorted(shown)} but Escalate answers: {answer!r}"
    )


def test_silence_buttons_are_not_a_false_promise_without_alertmanager_url(paging_bot, fake_slack):
    """No ALERTMANAGER_URL: the card still shows Silence 1h/4h, the click answers "Silencing the alert
    group for 1h", the outbox row then fails for good and nobody is told: people think it is silenced."""
    fake = fake_slack.fake
    assert paging_bot.ctx is not None
    incident, chan = _open(paging_bot, fake)
    shown = _action_ids(_card_blocks(fake, chan))
    click(paging_bot, "incident_silence_1h", f"{incident}:3600", "U01ALEX", chan.id)
    answer = wait_until(lambda: _answers(fake, chan)[-1:] or None, 10, what="answer")[0]
    time.sleep(3)
    told = [m.get("text", "") for m in fake.messages(chan.id) if "silence" in m.get("text", "").lower()]
    assert "incident_silence_1h" not in shown or told or "Silencing" not in answer, (
        f"card offers {sorted(shown)}, the click answered {answer!r}, and no silence was made or reported"
    )
