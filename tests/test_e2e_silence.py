"""Silence buttons against the real Alertmanager: create with the group's labels, expire on resolve."""

import json

import httpx
import pytest

from tests.alertmanager_proc import Alertmanager, now_iso
from tests.harness import AM_TOKEN, block_action_body, slack_headers, slash_command_body, wait_until

pytestmark = pytest.mark.e2e

ALERT = {
    "labels": {"alertname": "HighMemoryUsage", "service": "api", "severity": "warning", "team": "platform"},
    "annotations": {"summary": "Memory above 90%"},
}


def signed_post(bot, body: bytes) -> httpx.Response:
    r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_silence_round_trip_with_the_real_alertmanager(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    from tests.harness import free_port

    am_port = free_port()
    bot = start_bot(alertmanager_url=f"http://127.0.0.1:{am_port}")
    am = Alertmanager(tmp_path / "am", f"{bot.url}/webhooks/alertmanager", AM_TOKEN)
    am.port, am.url = am_port, f"http://127.0.0.1:{am_port}"
    with am:
        am.post_alerts([{**ALERT, "startsAt": now_iso()}])
        chan = wait_until(
            lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
            30,
            0.2,
            "incident channel",
        )
        incident_id = 1
        signed_post(bot, block_action_body("incident_silence_1h", f"{incident_id}:3600", channel=chan.id))

        def active():
            return [s for s in am.silences() if s["status"]["state"] == "active"]

        silences = wait_until(active, 15, 0.2, "an active silence at Alertmanager")
        matchers = {(m["name"], m["value"], m["isEqual"], m["isRegex"]) for m in silences[0]["matchers"]}
        assert matchers == {("alertname", "HighMemoryUsage", True, False), ("service", "api", True, False)}
        wait_until(
            lambda: any(
                "Silenced for 1h" in m.get("text", "") and "/#/silences/" in m.get("text", "")
                for m in fake.messages(chan.id)
            ),
            15,
            what="silence link in the channel",
        )

        # Resolving the incident expires the silence.
        signed_post(bot, slash_command_body("/incident", "resolve done", channel=chan.id))
        wait_until(lambda: not active(), 15, 0.2, "silence expired")
        assert any(s["status"]["state"] == "expired" for s in am.silences())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_silenced_group_that_stops_firing_resolves_with_the_real_alertmanager(
    start_bot, fake_slack, tmp_path
):
    """Alertmanager sends no resolved notification for a silenced alert: the bot asks its API."""
    from tests.harness import free_port

    fake = fake_slack.fake
    am_port = free_port()
    bot = start_bot(alertmanager_url=f"http://127.0.0.1:{am_port}", silence_check_interval="1s")
    am = Alertmanager(tmp_path / "am", f"{bot.url}/webhooks/alertmanager", AM_TOKEN)
    am.port, am.url = am_port, f"http://127.0.0.1:{am_port}"
    with am:
        am.post_alerts([{**ALERT, "startsAt": now_iso()}])
        chan = wait_until(
            lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
            30,
            0.2,
            "incident channel",
        )
        signed_post(bot, block_action_body("incident_silence_1h", "1:3600", channel=chan.id))
        wait_until(
            lambda: [s for s in am.silences() if s["status"]["state"] == "active"], 15, 0.2, "a silence"
        )

        def card() -> str:
            return json.dumps(next(m for m in fake.messages(chan.id) if m["ts"] == chan.pins[0])["blocks"])

        wait_until(lambda: "incident_unsilence" in card(), 15, 0.2, "Unsilence on the card")

        # The alert stops firing (its source sends it once more, ended): silenced, so no webhook.
        am.post_alerts([{**ALERT, "startsAt": now_iso(), "endsAt": now_iso()}])
        wait_until(lambda: ":white_check_mark: resolved" in card(), 20, 0.2, "the card says resolved")
        assert "incident_unsilence" not in card()
        messages = [m.get("text", "") for m in fake.messages(chan.id)]
        assert any("its alerts stopped firing while silenced" in t for t in messages), messages
        # Resolving expires the silence, so the group's next firing is heard.
        wait_until(
            lambda: not [s for s in am.silences() if s["status"]["state"] == "active"], 15, 0.2, "expired"
        )
