"""End to end: the real Alertmanager binary notifies the real bot process; the fake Slack sees it all."""

import json

import pytest

from tests.alertmanager_proc import Alertmanager, now_iso
from tests.harness import AM_TOKEN, BotProcess, bot_env, wait_until

pytestmark = pytest.mark.e2e

ALERTS = [
    {
        "labels": {
            "alertname": "WeaviateDown",
            "service": "weaviate",
            "severity": "critical",
            "team": "data-platform",
            "job": "weaviate",
        },
        "annotations": {"summary": "Weaviate is down", "description": 'up{job="weaviate"} == 0 for 1m'},
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }
]


def test_real_alertmanager_to_slack_channel_and_back(fake_slack, database_url, tmp_path):
    fake = fake_slack.fake
    bot = BotProcess(bot_env(fake_slack.url, database_url), tmp_path / "bot.log").start()
    try:
        with Alertmanager(tmp_path / "am", f"{bot.url}/webhooks/alertmanager", AM_TOKEN) as am:
            am.post_alerts([{**a, "startsAt": now_iso()} for a in ALERTS])

            def channel():
                chans = [c for c in fake.channels.values() if c.name.startswith("inc-")]
                return chans[0] if chans and chans[0].pins and chans[0].topic else None

            chan = wait_until(channel, 30, 0.2, "incident channel from Alertmanager")
            assert chan.name.endswith("-weaviate-down")
            assert chan.topic.startswith("SEV1 | triggered | Weaviate is down")
            card = next(m for m in fake.messages(chan.id) if m["ts"] == chan.pins[0])
            assert "WeaviateDown" in json.dumps(card["blocks"])
            assert am.url.replace("127.0.0.1", "") in json.dumps(
                card["blocks"]
            ) or "Alertmanager" in json.dumps(card["blocks"])

            # Resolve at Alertmanager: it sends the resolved notification, the incident resolves.
            am.post_alerts([{**a, "startsAt": now_iso(), "endsAt": now_iso()} for a in ALERTS])
            wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | resolved"), 30, 0.2, "resolved")
            texts = [m.get("text", "") for m in fake.messages(chan.id)]
            assert any("Resolved by Alertmanager" in t for t in texts)
        assert len(fake.calls_to("conversations.create")) == 1
    finally:
        bot.stop()
    log = (tmp_path / "bot.log").read_text()
    assert AM_TOKEN not in log and "xoxb-test" not in log
