"""The dead man's switch: a missing Watchdog heartbeat opens a SEV1 and pages; its return resolves it."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.harness import Clock, post_alertmanager, processed, wait_until
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def watchdog() -> dict:
    payload = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
    p = copy.deepcopy(payload)
    p["groupKey"] = '{}:{alertname="Watchdog"}'
    p["groupLabels"] = {"alertname": "Watchdog"}
    p["commonLabels"] = {"alertname": "Watchdog", "severity": "none"}
    p["commonAnnotations"] = {"summary": "An alert that should always be firing"}
    p["alerts"][0]["labels"] = dict(p["commonLabels"])
    p["alerts"][0]["annotations"] = dict(p["commonAnnotations"])
    p["alerts"][0]["fingerprint"] = "watchdog0001"
    return p


def test_silence_of_the_watchdog_pages_and_its_return_resolves(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", heartbeat_timeout="10m")
    r = post_alertmanager(bot.url, watchdog())
    assert r.status_code == 202 and processed(bot, r) == {
        **processed(bot, r),
        "decision": "heartbeat",
        "incident": None,
    }
    # Heartbeats keep coming: nothing happens.
    for _ in range(3):
        bot.clock.advance(minutes=6)
        post_alertmanager(bot.url, watchdog())
        bot.tick()
    assert not [c for c in fake.channels.values() if c.name.startswith("inc-")]
    # They stop: after HEARTBEAT_TIMEOUT, a SEV1 incident opens and the on-call person is paged.
    bot.clock.advance(minutes=11)
    chan = wait_until(
        lambda: next(
            (c for c in fake.channels.values() if "alerting-pipeline-silent" in c.name and c.topic), None
        ),
        15,
        what="pipeline-silent incident",
    )
    assert chan.topic.startswith("SEV1 | triggered | Alerting pipeline is silent")
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="page for the silent pipeline")
    bot.tick()
    assert len([c for c in fake.channels.values() if "alerting-pipeline-silent" in c.name]) == 1
    # The heartbeat comes back: the incident resolves by itself.
    post_alertmanager(bot.url, watchdog())
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | resolved"), 15, what="resolved")
