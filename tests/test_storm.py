"""Alert storms fold into one incident: few channels, one page, a live list; groups resolve alone."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

from bot.service import postmortem, responders
from tests.harness import Clock, post_alertmanager, processed, wait_until
from tests.test_flow_commands import slash
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())


def group(i: int, status: str = "firing") -> dict:
    p = copy.deepcopy(BASE)
    p["groupKey"] = f'{{}}:{{alertname="WeaviateDown", service="shard-{i}"}}'
    p["groupLabels"]["service"] = p["commonLabels"]["service"] = f"shard-{i}"
    p["commonAnnotations"]["summary"] = f"Weaviate shard {i} is down"
    p["alerts"][0]["fingerprint"] = f"shard{i:04d}"
    p["status"] = p["alerts"][0]["status"] = status
    if status == "resolved":
        p["alerts"][0]["endsAt"] = "2026-11-23T12:30:00Z"
    return p


def storm_channel(fake):
    return next((c for c in fake.channels.values() if "alert-storm" in c.name and c.pins), None)


def card_text(fake, chan) -> str:
    latest = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == chan.pins[0]]
    source = (
        latest[-1].args["blocks"]
        if latest
        else next(m for m in fake.messages(chan.id) if m["ts"] == chan.pins[0])["blocks"]
    )
    return json.dumps(source)


def test_a_storm_folds_into_one_incident_and_groups_resolve_alone(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", storm_threshold=3)
    decisions = [processed(bot, post_alertmanager(bot.url, group(i)))["decision"] for i in range(8)]
    assert decisions == ["first notification"] * 3 + ["folded into a storm incident"] * 5
    assert (
        processed(bot, post_alertmanager(bot.url, group(5)))["decision"] == "repeat or retry, nothing changed"
    )

    chan = wait_until(lambda: storm_channel(fake), 15, what="storm channel")
    wait_until(lambda: "5, 5 still firing" in card_text(fake, chan), 15, what="storm card lists its groups")
    assert len([c for c in fake.channels.values() if c.name.startswith("inc-")]) == 4  # 3 + the storm
    wait_until(lambda: len(dms_to(fake, "U01ALEX")) == 4, 15, what="one page per incident, one for the storm")

    # One folded group resolves on its own: the storm stays open and its list shows it.
    assert (
        processed(bot, post_alertmanager(bot.url, group(4, "resolved")))["decision"] == "all alerts resolved"
    )
    wait_until(lambda: "5, 4 still firing" in card_text(fake, chan), 15, what="list updated")
    assert fake.channel(chan.id).topic.startswith("SEV1 | triggered")
    # All of them resolve: so does the storm.
    for i in (3, 5, 6, 7):
        post_alertmanager(bot.url, group(i, "resolved"))
    wait_until(lambda: fake.channel(chan.id).topic.startswith("SEV1 | resolved"), 15, what="storm resolved")
    assert len(dms_to(fake, "U01ALEX")) == 4


# `/incident list` during a storm lists incidents (channels), not every folded group (found by audit:
# 60 groups filled the list's 50 lines and pushed the real incidents and the storm off it).
def test_list_counts_incidents_not_folded_groups(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", storm_threshold=3)
    for i in range(60):
        post_alertmanager(bot.url, group(i))
    wait_until(lambda: storm_channel(fake), 15, what="storm channel")
    listed = slash(bot, "list")
    head = listed.splitlines()[0]
    # 3 incidents with their own channel + 1 storm incident holding the 57 other groups.
    assert head == "*4 open incident(s):*", head + "\n" + "\n".join(listed.splitlines()[1:6])
    assert "57 open alert groups" in listed, listed


# A storm's post-mortem draft lists the alerts of its folded groups and knows when they started
# (found by audit: it said "declared by hand" and had no detection time).
def test_storm_postmortem_lists_the_alerts_of_its_groups(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", storm_threshold=3)
    for i in range(6):
        post_alertmanager(bot.url, group(i))
    chan = wait_until(lambda: storm_channel(fake), 15, what="storm channel")
    storm_id = responders.by_channel(bot.ctx, chan.id)
    for i in range(6):
        post_alertmanager(bot.url, group(i, "resolved"))
    text = postmortem.render(bot.ctx, storm_id, None)
    alerts = text.split("## Alerts", 1)[1].split("## Runbook", 1)[0]
    assert "declared by hand" not in alerts, alerts
    assert "Weaviate shard 4 is down" in text or "shard-4" in alerts, alerts
    facts = postmortem.facts_for(bot.ctx, storm_id)
    assert facts.detected is not None, "the storm's alerts started before it was declared"
