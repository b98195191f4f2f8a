"""Alertmanager webhook -> incident -> Slack channel, card, topic -> resolution, over real HTTP."""

import copy
import json
from pathlib import Path

from tests.harness import post_alertmanager, processed, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager-0.25"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def resolved(payload: dict) -> dict:
    out = copy.deepcopy(payload)
    out["status"] = "resolved"
    for alert in out["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-22T23:50:00Z"
    return out


def channel_ready(fake, prefix="inc-"):
    chans = [c for c in fake.channels.values() if c.name.startswith(prefix)]
    return chans[0] if chans and chans[0].pins and chans[0].topic else None


def test_alert_opens_channel_with_pinned_card_then_resolves(start_bot, fake_slack):
    bot = start_bot()
    fake = fake_slack.fake
    r = post_alertmanager(bot.url, fixture("firing-two-alerts.json"))
    assert r.status_code == 202, r.text
    assert processed(bot, r)["decision"] == "first notification"

    channel = wait_until(lambda: channel_ready(fake), 10, what="channel with topic and pin")
    day = bot.clock().strftime("%Y%m%d")
    assert channel.name == f"inc-{day}-high-api-error-rate"
    assert channel.topic.startswith("SEV1 | triggered | API error rate above 5%")
    card = next(m for m in channel.messages if m["ts"] == channel.pins[0])
    card_text = json.dumps(card["blocks"])
    assert "HighApiErrorRate" in card_text and "Error rate is 7.3% on api-1" in card_text
    assert "http://prometheus:9090/graph?g0.expr=rate" in card_text
    assert "Open in Alertmanager" in card_text

    # One alert resolves: the incident stays open and the card shows it.
    assert (
        processed(bot, post_alertmanager(bot.url, fixture("partially-resolved.json")))["decision"]
        == "alerts changed"
    )
    # Everything resolves: the incident resolves, with a message, topic and card updated.
    r = post_alertmanager(bot.url, resolved(fixture("partially-resolved.json")))
    assert processed(bot, r)["decision"] == "all alerts resolved"
    wait_until(
        lambda: fake.channel(channel.id).topic.startswith("SEV1 | resolved"), 10, what="resolved topic"
    )
    wait_until(
        lambda: any("Resolved by Alertmanager" in m.get("text", "") for m in fake.messages(channel.id)), 10
    )

    def card_updated_to_resolved() -> bool:
        updates = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == channel.pins[0] and c.ok]
        return bool(updates) and "resolved" in json.dumps(updates[-1].args["blocks"])

    wait_until(card_updated_to_resolved, 10, what="card shows the resolution")


def test_the_same_webhook_twenty_times_opens_one_incident(start_bot, fake_slack):
    bot = start_bot()
    payload = fixture("firing-single-alert.json")
    decisions = [processed(bot, post_alertmanager(bot.url, payload))["decision"] for _ in range(20)]
    assert decisions[0] == "first notification"
    assert set(decisions[1:]) == {"repeat or retry, nothing changed"}
    wait_until(lambda: channel_ready(fake_slack.fake), 10)
    assert len(fake_slack.fake.calls_to("conversations.create")) == 1
    assert len([c for c in fake_slack.fake.channels.values() if c.name.startswith("inc-")]) == 1
